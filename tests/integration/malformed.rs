//! 10,000 malformed inputs across HTTP, gRPC and NATS: random bytes, broken and mutated JSON and
//! XML, deep nesting, huge fields, invalid UTF-8, protobuf garbage. Not one may crash a service;
//! every HTTP answer is a 4xx with a JSON error, every gRPC call gets a status, every bad NATS
//! message is dead-lettered; afterwards the system is healthy and a good story still flows.

use std::sync::atomic::{AtomicUsize, Ordering};

use bashu_tests::{TestSystem, eventually, story_json};
use bytes::{Buf, BufMut};
use serde_json::json;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n.max(1)) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// One malformed body for a JSON or XML endpoint, by kind.
fn malformed(noise: &mut Noise, valid: &[u8]) -> Vec<u8> {
    match noise.below(8) {
        0 => {
            let len = noise.below(2000);
            noise.bytes(len)
        }
        1 => {
            // The valid document with a few bytes changed and trailing garbage, so it is never
            // accidentally still valid.
            let mut body = valid.to_vec();
            for _ in 0..=noise.below(6) {
                let at = noise.below(body.len() as u64);
                body[at] = noise.next() as u8;
            }
            body.extend(b"\x00}");
            body
        }
        2 => {
            let cut = noise.below(valid.len() as u64);
            valid[..cut].to_vec()
        }
        3 => {
            let depth = 1000 + noise.below(20_000);
            let mut body = "[".repeat(depth).into_bytes();
            body.extend("]".repeat(depth).into_bytes());
            body
        }
        4 => {
            let depth = 1000 + noise.below(5000);
            let mut body = "<a>".repeat(depth).into_bytes();
            body.extend("</a>".repeat(depth).into_bytes());
            body
        }
        5 => {
            // Invalid UTF-8 inside a string.
            let mut body = br#"{"id":"x","version":1,"originCounty":"511083","headline":""#.to_vec();
            body.extend([0xff, 0xfe, 0xc3, 0x28]);
            body.extend(br#"","body":"b","category":"CATEGORY_POLICY"}"#);
            body
        }
        6 => {
            // Wrong types and unknown fields.
            let choices = [
                json!({"id": 5, "version": "x"}),
                json!({"id": "a", "version": -1, "originCounty": []}),
                json!({"id": "a", "version": 1, "originCounty": "511083", "headline": {"x": 1}}),
                json!({"unknown": true}),
                json!(null),
                json!([1, 2, 3]),
            ];
            choices[noise.below(choices.len() as u64)].to_string().into_bytes()
        }
        _ => {
            // An entity bomb and an external entity: refused before anything expands.
            let choices: [&[u8]; 2] = [
                br#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;&x;&x;&x;&x;&x;">]><alert>&y;</alert>"#,
                br#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><alert>&e;</alert>"#,
            ];
            choices[noise.below(2)].to_vec()
        }
    }
}

/// Sends raw bytes as a gRPC message, whatever the method expects.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let bytes = src.chunk().to_vec();
        src.advance(bytes.len());
        Ok(Some(bytes))
    }
}

#[tokio::test]
async fn ten_thousand_malformed_inputs_crash_nothing_and_each_gets_a_clear_error() {
    let t = TestSystem::start().await;
    let token = t.token_for("511083").await;
    let valid_story = story_json("fuzz-ok", "511083", json!({"partners": true})).to_string().into_bytes();
    let valid_cap =
        crate::alerts::cap("FUZZ-1", "Alert", "Test", "Severe", None, &crate::alerts::gbt("5107")).into_bytes();
    let http = bashu::http_client();
    let base = t.http_base();

    // 7,000 over HTTP, eight at a time.
    let answered = AtomicUsize::new(0);
    let routes: [(&str, &str, bool); 6] = [
        ("/v1/stories", "application/json", true),
        ("/v1/stories/ninjs", "application/ninjs+json", true),
        ("/v1/stories/batch", "application/json", true),
        ("/v1/alerts/validate", "application/xml", false),
        ("/v1/alerts", "application/xml", false),
        ("/v1/stories", "text/plain", true),
    ];
    let mut noise = Noise(0x5eed_1234_abcd_ef01);
    let mut requests = Vec::with_capacity(7000);
    for n in 0..7000 {
        let (path, content_type, story) = routes[n % routes.len()];
        let body = malformed(&mut noise, if story { &valid_story } else { &valid_cap });
        requests.push((path, content_type, body));
    }
    use futures::StreamExt;
    futures::stream::iter(requests)
        .for_each_concurrent(8, |(path, content_type, body)| {
            let (http, base, token, answered) = (&http, &base, &token, &answered);
            async move {
                let response = http
                    .post(format!("{base}{path}"))
                    .bearer_auth(token)
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .expect("the server answers");
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                let answer: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"));
                if path == "/v1/alerts/validate" && status == 200 {
                    // The validator's contract: it judges any document and lists every problem.
                    assert_eq!(answer["valid"], false, "{text}");
                    assert!(answer["problems"].as_array().is_some_and(|p| !p.is_empty()), "{text}");
                } else {
                    assert!((400..500).contains(&status), "{path} answered {status}: {text}");
                    assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}: {text}");
                }
                answered.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await;
    assert_eq!(answered.load(Ordering::SeqCst), 7000);

    // 2,000 protobuf garbage messages over gRPC, to ingest, alerts and admin.
    let channel = tonic::transport::Channel::from_shared(t.grpc_endpoint()).unwrap().connect().await.unwrap();
    let methods = [
        ("/bashu.ingest.v1.IngestService/SubmitStory", token.clone()),
        ("/bashu.ingest.v1.IngestService/SubmitStories", token.clone()),
        ("/bashu.alert.v1.AlertService/IssueAlert", String::new()),
        ("/bashu.alert.v1.AlertService/ValidateAlert", String::new()),
        ("/bashu.admin.v1.RegistryService/PutAlliance", bashu_tests::OPERATOR_TOKEN.to_owned()),
    ];
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for n in 0..2000 {
        let (method, bearer) = &methods[n % methods.len()];
        let len = noise.below(600);
        let body = noise.bytes(len);
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.expect("the gRPC listener is up");
        let mut request = tonic::Request::new(body);
        if !bearer.is_empty() {
            request.metadata_mut().insert("authorization", format!("Bearer {bearer}").parse().unwrap());
        }
        let code = match grpc.unary(request, method.parse().unwrap(), Raw).await {
            Ok(_) => tonic::Code::Ok,
            Err(status) => {
                assert!(!status.message().is_empty(), "{method}: a status without a message");
                status.code()
            }
        };
        assert!(!matches!(code, tonic::Code::Unknown | tonic::Code::Internal), "{method}: {code:?}");
        *codes.entry(format!("{method} {code:?}")).or_default() += 1;
    }

    // 1,000 garbage messages straight onto the bus, where services consume.
    let subjects = t.bus.subjects();
    let targets = [
        subjects.story_submitted("511083").unwrap(),
        subjects.story_decided("511083").unwrap(),
        subjects.alert_issued("mianyang").unwrap(),
        subjects.alert_ack("510781").unwrap(),
    ];
    for n in 0..1000 {
        let len = noise.below(800);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(bashu_bus::headers::MSG_ID, format!("fuzz-{n}").as_str());
        let subject = targets[n % targets.len()].clone();
        t.bus.jetstream().publish_with_headers(subject, headers, noise.bytes(len).into()).await.unwrap().await.unwrap();
    }
    eventually("every consumer has dealt with the garbage", || async {
        let (_, consumers) = t.bus.operations().health().await.unwrap();
        consumers
            .iter()
            .filter(|c| ["moderation", "distribution", "alert-fanout", "alert-tracker"].contains(&c.name.as_str()))
            .all(|c| c.pending + c.ack_pending == 0)
    })
    .await;
    let dead = t.bus.operations().dead_letters().await.unwrap();

    // Still healthy, and a good story still goes through.
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap().status();
    assert_eq!(ready, 200);
    let (status, answer) = t.post_story(&story_json("after-fuzz", "511083", json!({"partners": true}))).await;
    assert_eq!(status, 202, "{answer}");
    eventually("the good story is published", || async { t.published_count().await >= 1 }).await;
    println!(
        "malformed inputs: 7000 HTTP (all 4xx with a JSON error), 2000 gRPC {codes:?}, 1000 NATS ({} dead-lettered), 0 crashes",
        dead.len()
    );
    assert!(dead.len() >= 500, "garbage on consumed subjects is dead-lettered: {}", dead.len());
}
