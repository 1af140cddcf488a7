//! The near-duplicate window: the fingerprints of the stories approved within the last hours,
//! indexed so that a story is compared with a few candidates instead of the whole window.
//!
//! The index is SimHash banding: the 64 bits are cut into `max_distance + 1` bands, and two
//! fingerprints that differ in at most `max_distance` bits cannot differ in every band (there are
//! more bands than differing bits), so they share at least one band exactly. Only the stories that
//! share a band with the new one are compared bit by bit.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::simhash;

/// An earlier story another county shared, for near-duplicate checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Earlier {
    /// Its origin county.
    pub origin: String,
    /// Its id.
    pub id: String,
    /// Its fingerprint.
    pub fingerprint: u64,
    /// When it was approved.
    pub at: SystemTime,
}

impl Earlier {
    /// A stored fingerprint (`recent.<origin>.<id>` in the moderation bucket): 8 bytes of SimHash,
    /// 8 bytes of Unix seconds.
    pub fn decode(origin: &str, id: &str, value: &[u8]) -> Option<Self> {
        let (fingerprint, seconds) = (value.get(..8)?, value.get(8..16)?);
        Some(Earlier {
            origin: origin.into(),
            id: id.into(),
            fingerprint: u64::from_be_bytes(fingerprint.try_into().ok()?),
            at: UNIX_EPOCH + Duration::from_secs(u64::from_be_bytes(seconds.try_into().ok()?)),
        })
    }

    /// What [`Earlier::decode`] reads.
    pub fn encode(&self) -> Vec<u8> {
        let seconds = self.at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        [self.fingerprint.to_be_bytes(), seconds.to_be_bytes()].concat()
    }
}

type StoryId = (String, String);

/// The stories approved within the window, by story, by band and in the order they came.
#[derive(Debug)]
pub struct Window {
    stories: HashMap<StoryId, Earlier>,
    /// Band number and its bits → the stories with those bits there.
    bands: HashMap<(u8, u64), Vec<StoryId>>,
    /// Oldest first, for expiry (an entry replaced since is skipped when it comes up).
    arrivals: VecDeque<(SystemTime, StoryId)>,
    band_count: u32,
}

impl Window {
    /// An empty window whose index finds every story within `max_distance` bits.
    pub fn new(max_distance: u32) -> Self {
        Self {
            stories: HashMap::new(),
            bands: HashMap::new(),
            arrivals: VecDeque::new(),
            band_count: (max_distance + 1).clamp(1, 64),
        }
    }

    /// How many stories it holds.
    pub fn len(&self) -> usize {
        self.stories.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.stories.is_empty()
    }

    /// The same stories, indexed for another distance (the rules changed).
    pub fn reindexed(self, max_distance: u32) -> Self {
        let mut window = Self::new(max_distance);
        let mut stories: Vec<Earlier> = self.stories.into_values().collect();
        stories.sort_by_key(|e| e.at);
        for earlier in stories {
            window.insert(earlier);
        }
        window
    }

    fn band_values(&self, fingerprint: u64) -> impl Iterator<Item = (u8, u64)> + '_ {
        (0..self.band_count).map(move |band| {
            let start = band * 64 / self.band_count;
            let end = (band + 1) * 64 / self.band_count;
            let width = end - start;
            let mask = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
            (band as u8, (fingerprint >> start) & mask)
        })
    }

    fn insert(&mut self, earlier: Earlier) {
        let id = (earlier.origin.clone(), earlier.id.clone());
        self.forget(&id);
        let bands: Vec<(u8, u64)> = self.band_values(earlier.fingerprint).collect();
        for band in bands {
            self.bands.entry(band).or_default().push(id.clone());
        }
        self.arrivals.push_back((earlier.at, id.clone()));
        self.stories.insert(id, earlier);
    }

    fn forget(&mut self, id: &StoryId) {
        let Some(old) = self.stories.remove(id) else { return };
        let bands: Vec<(u8, u64)> = self.band_values(old.fingerprint).collect();
        for band in bands {
            if let Some(members) = self.bands.get_mut(&band) {
                members.retain(|member| member != id);
                if members.is_empty() {
                    self.bands.remove(&band);
                }
            }
        }
    }

    /// Keeps `earlier` (in place of the same story's older fingerprint) and forgets what is
    /// older than `window`.
    pub fn remember(&mut self, earlier: Earlier, window: Duration) {
        // The same fingerprint again (a replica's copy of what this process stored: its time is
        // whole seconds there) changes nothing.
        let unchanged = self
            .stories
            .get(&(earlier.origin.clone(), earlier.id.clone()))
            .is_some_and(|known| known.fingerprint == earlier.fingerprint);
        if !unchanged {
            self.insert(earlier);
        }
        let now = SystemTime::now();
        while let Some((at, id)) = self.arrivals.front() {
            if now.duration_since(*at).map_or(true, |age| age <= window) {
                break;
            }
            let (at, id) = (*at, id.clone());
            self.arrivals.pop_front();
            if self.stories.get(&id).is_some_and(|e| e.at == at) {
                self.forget(&id);
            }
        }
    }

    /// The closest story of another county within `max_distance` bits of `fingerprint` and
    /// within `window` of `now`, with its distance.
    pub fn nearest<'a>(
        &'a self,
        fingerprint: u64,
        origin: &str,
        max_distance: u32,
        window: Duration,
        now: SystemTime,
    ) -> Option<(&'a Earlier, u32)> {
        let closest = |candidates: Vec<&'a Earlier>| {
            candidates
                .into_iter()
                .filter(|e| e.origin != origin && now.duration_since(e.at).is_ok_and(|age| age <= window))
                .map(|e| (e, simhash::distance(e.fingerprint, fingerprint)))
                .filter(|(_, d)| *d <= max_distance)
                .min_by_key(|(e, d)| (*d, e.at))
        };
        if max_distance + 1 > self.band_count {
            // Indexed for a smaller distance than asked: every story is a candidate.
            return closest(self.stories.values().collect());
        }
        let buckets: Vec<&Vec<StoryId>> =
            self.band_values(fingerprint).filter_map(|band| self.bands.get(&band)).collect();
        // Many stories alike (one announcement copied everywhere): the buckets hold most of the
        // window, and reading it straight through is cheaper than gathering them.
        if buckets.iter().map(|b| b.len()).sum::<usize>() > self.stories.len() / 2 {
            return closest(self.stories.values().collect());
        }
        let mut seen = std::collections::HashSet::new();
        let candidates =
            buckets.into_iter().flatten().filter(|id| seen.insert(*id)).filter_map(|id| self.stories.get(id)).collect();
        closest(candidates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn earlier(origin: &str, id: &str, fingerprint: u64, at: SystemTime) -> Earlier {
        Earlier { origin: origin.into(), id: id.into(), fingerprint, at }
    }

    #[test]
    fn the_index_finds_exactly_what_comparing_with_everything_finds() {
        // Fingerprints from a small deterministic generator, and near copies of some of them.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let now = SystemTime::now();
        let mut window = Window::new(8);
        let mut all = Vec::new();
        for n in 0..2_000 {
            let base = next();
            let fingerprint = if n % 3 == 0 {
                base
            } else {
                all.get(n / 2).map_or(base, |e: &Earlier| e.fingerprint ^ (next() & next() & next()))
            };
            let e = earlier(&format!("5{:05}", n % 37), &format!("s{n}"), fingerprint, now);
            window.remember(e.clone(), Duration::from_secs(3600));
            all.push(e);
        }
        for _ in 0..500 {
            let probe = all[(next() % all.len() as u64) as usize].fingerprint ^ (next() & next() & next() & next());
            for distance in [0, 3, 8] {
                let by_index =
                    window.nearest(probe, "000000", distance, Duration::from_secs(3600), now).map(|(_, d)| d);
                let by_scan =
                    all.iter().map(|e| simhash::distance(e.fingerprint, probe)).filter(|d| *d <= distance).min();
                assert_eq!(by_index, by_scan, "distance {distance}");
            }
        }
    }

    #[test]
    fn a_story_replaced_or_out_of_the_window_is_forgotten() {
        let now = SystemTime::now();
        let mut window = Window::new(8);
        let old = now - Duration::from_secs(7200);
        window.remember(earlier("500153", "a", 1, old), Duration::from_secs(3600 * 3));
        window.remember(earlier("500153", "a", 0xFFFF_0000, now), Duration::from_secs(3600 * 3));
        assert_eq!(window.len(), 1, "the same story twice is one entry");
        assert!(
            window.nearest(1, "511083", 8, Duration::from_secs(3600 * 3), now).is_none(),
            "its old fingerprint is gone"
        );
        window.remember(earlier("500101", "b", 7, now), Duration::from_secs(60));
        assert_eq!(window.len(), 2);
        window.remember(earlier("500101", "c", 9, now + Duration::from_secs(120)), Duration::from_secs(60));
        assert!(window.len() <= 3);
        assert!(
            window.nearest(0xFFFF_0000, "500153", 8, Duration::from_secs(3600), now).is_none(),
            "a county's own story is no duplicate"
        );
    }
}
