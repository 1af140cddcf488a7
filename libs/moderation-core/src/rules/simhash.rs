//! Near-duplicate detection: a 64-bit SimHash over character 3-shingles of the normalised
//! headline and body. Two stories whose fingerprints differ in at most a few bits
//! say the same thing in nearly the same words (8 bits by default: see `NearDuplicateConfig`).

use super::normalise::normalise;

/// FNV-1a, 64 bits: stable across Rust releases, so stored fingerprints stay comparable.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

/// The fingerprint of a text.
pub fn fingerprint(text: &str) -> u64 {
    let chars: Vec<char> = normalise(text).text.chars().collect();
    let mut weights = [0i64; 64];
    let mut buffer = [0u8; 12];
    for shingle in chars.windows(3) {
        let mut length = 0;
        for c in shingle {
            length += c.encode_utf8(&mut buffer[length..]).len();
        }
        let hash = fnv1a(&buffer[..length]);
        for (bit, weight) in weights.iter_mut().enumerate() {
            *weight += if hash >> bit & 1 == 1 { 1 } else { -1 };
        }
    }
    weights
        .iter()
        .enumerate()
        .fold(0, |fingerprint, (bit, weight)| if *weight > 0 { fingerprint | 1 << bit } else { fingerprint })
}

/// How many bits two fingerprints differ in.
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "隆昌市与荣昌区的记者沿着省界同行采访，记录川南渝西石板河畔的跨省夜市。两地融媒体中心首次联合采制，同一条新闻两地同步发布。夜市从傍晚六点开到凌晨，摊主来自两省十几个乡镇，卖的是石盘鱼、羊肉汤和夏布小物件。荣昌区文旅委负责人说，夜市带动了周边民宿的入住率，周末几乎一房难求。隆昌市则计划把石牌坊景区的夜游线路延伸到省界，和荣昌的夜市连成一片，让游客一晚上逛两个省。";

    #[test]
    fn a_lightly_edited_copy_is_near_and_another_story_is_far() {
        let original = fingerprint(BODY);
        assert_eq!(distance(original, fingerprint(&BODY.replace('，', " "))), 0, "punctuation does not count");
        assert!(distance(original, fingerprint(&BODY.replace("首次", "第一次"))) <= 8, "one word changed");
        assert!(distance(original, fingerprint(&format!("两地夜市火了\n{BODY}"))) <= 8, "a new headline");
        let other = "涪江流域十县区启动春季护渔联合行动，从平武到合川，沿线县区同步开展增殖放流，保护涪江鱼类资源。渔政部门在江油、三台、射洪设立了十个巡护点，禁渔期内全天候巡查，发现违规捕捞将依法处罚。";
        assert!(distance(original, fingerprint(other)) > 16, "{}", distance(original, fingerprint(other)));
    }
}
