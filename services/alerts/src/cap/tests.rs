use super::*;

const A1: &str = include_str!("../../fixtures/a1-advisory.xml");
const A2: &str = include_str!("../../fixtures/a2-thunderstorm.xml");
const A3_ORIGINAL: &str = include_str!("../../fixtures/a3-earthquake-original.xml");
const A3_UPDATE: &str = include_str!("../../fixtures/a3-earthquake-update.xml");
const A4: &str = include_str!("../../fixtures/a4-missing-child.xml");

fn problems(xml: &str) -> Vec<Problem> {
    parse(xml.as_bytes()).expect_err("the document must be refused")
}

fn refused_with(xml: &str, path: &str, reason: &str) {
    let found = problems(xml);
    assert!(
        found.iter().any(|p| p.path == path && p.reason.contains(reason)),
        "expected {path}: …{reason}…, got {found:#?}"
    );
}

#[test]
fn the_four_appendix_a_examples_are_accepted() {
    for xml in [A1, A2, A3_ORIGINAL, A3_UPDATE, A4] {
        if let Err(problems) = parse(xml.as_bytes()) {
            panic!("refused: {problems:#?}");
        }
    }
    let a2 = parse(A2.as_bytes()).unwrap();
    assert_eq!(a2.identifier, "CQ-MET-20261128-0730");
    assert_eq!(a2.sent.unwrap().seconds, 1_795_822_200);
    let area = &a2.infos[0].areas[0];
    assert_eq!(area.polygons[0].points.len(), 5);
    assert_eq!(area.geocodes.len(), 2);
    assert_eq!(a2.infos[0].severity(), Severity::Severe);
    let a3 = parse(A3_UPDATE.as_bytes()).unwrap();
    assert_eq!(a3.msg_type(), MsgType::Update);
    assert_eq!(a3.references[0].identifier, "MY-EQ-20261128.1");
    assert_eq!(a3.infos[0].areas[0].circles[0].radius_km, 30.0);
    let a4 = parse(A4.as_bytes()).unwrap();
    assert_eq!(a4.infos.iter().map(|i| i.language.as_str()).collect::<Vec<_>>(), ["zh-CN", "en-US"]);
}

#[test]
fn a_missing_required_element_is_named() {
    refused_with(&A1.replace("  <sent>2026-11-28T09:00:00+08:00</sent>\n", ""), "/alert", "missing required <sent>");
    refused_with(
        &A1.replace("    <event>公共安全预警等级调整</event>\n", ""),
        "/alert/info[1]",
        "missing required <event>",
    );
}

#[test]
fn a_bad_value_is_named_with_the_allowed_ones() {
    refused_with(
        &A1.replace("<status>Actual</status>", "<status>Real</status>"),
        "/alert/status",
        "\"Real\" is not one of Actual",
    );
    refused_with(
        &A1.replace("<urgency>Immediate</urgency>", "<urgency>Now</urgency>"),
        "/alert/info[1]/urgency",
        "not one of",
    );
}

#[test]
fn elements_out_of_order_are_refused() {
    let swapped = A1.replace(
        "<status>Actual</status>\n  <msgType>Alert</msgType>",
        "<msgType>Alert</msgType>\n  <status>Actual</status>",
    );
    refused_with(&swapped, "/alert/status", "out of order: <status> must come before <msgType>");
}

#[test]
fn date_times_need_an_offset_and_no_fractions() {
    for bad in ["2026-11-28T09:00:00Z", "2026-11-28T09:00:00.5+08:00", "2026-11-28 09:00:00+08:00", "yesterday"] {
        refused_with(&A1.replace("2026-11-28T09:00:00+08:00", bad), "/alert/sent", "is not a CAP date-time");
    }
}

#[test]
fn references_must_be_triples_not_empty_and_not_self_referencing() {
    refused_with(
        &A3_UPDATE.replace("mianyang@bashu.example,MY-EQ-20261128.1,2026-11-28T04:30:00+08:00", ""),
        "/alert/references",
        "empty",
    );
    refused_with(
        &A3_UPDATE.replace("MY-EQ-20261128.1,2026", "MY-EQ-20261128.2,2026"),
        "/alert/references",
        "must not reference itself",
    );
    refused_with(
        &A3_UPDATE.replace(",MY-EQ-20261128.1,", ",MY-EQ-20261128.1;"),
        "/alert/references",
        "not a sender,identifier,sent triple",
    );
    let without = A3_UPDATE
        .replace("  <references>mianyang@bashu.example,MY-EQ-20261128.1,2026-11-28T04:30:00+08:00</references>\n", "");
    refused_with(&without, "/alert", "an Update or Cancel must name the messages it refers to");
}

#[test]
fn polygons_must_be_closed_with_four_points_in_range() {
    let polygon = "29.20,105.35 29.20,105.95 29.85,105.95 29.85,105.35 29.20,105.35";
    let path = "/alert/info[1]/area[1]/polygon[1]";
    refused_with(&A2.replace(polygon, "29.20,105.35 29.20,105.95 29.85,105.95 29.85,105.35"), path, "must be closed");
    refused_with(&A2.replace(polygon, "29.20,105.35 29.20,105.95 29.20,105.35"), path, "at least four points");
    refused_with(
        &A2.replace(polygon, "99.20,105.35 29.20,105.95 29.85,105.95 99.20,105.35"),
        path,
        "latitude must be within",
    );
    refused_with(
        &A2.replace(polygon, "29.20;105.35 29.20,105.95 29.85,105.95 29.20;105.35"),
        path,
        "not a lat,lon pair",
    );
    // A letter O for a zero: the pair has its comma but is no number.
    refused_with(
        &A2.replace(polygon, "29.2O,105.35 29.20,105.95 29.85,105.95 29.2O,105.35"),
        path,
        "\"29.2O,105.35\" is not a lat,lon pair",
    );
}

#[test]
fn circles_are_lat_lon_radius() {
    let path = "/alert/info[1]/area[1]/circle[1]";
    refused_with(&A3_ORIGINAL.replace("32.41,104.53 30", "32.41,104.53"), path, "is not \"lat,lon radius\"");
    refused_with(&A3_ORIGINAL.replace("32.41,104.53 30", "32.41,104.53 far"), path, "not a radius");
}

#[test]
fn scope_conditions_hold() {
    refused_with(
        &A1.replace("<scope>Public</scope>", "<scope>Restricted</scope>"),
        "/alert",
        "<restriction> is required",
    );
    refused_with(&A1.replace("<scope>Public</scope>", "<scope>Private</scope>"), "/alert", "<addresses> is required");
    refused_with(
        &A1.replace("<scope>Public</scope>", "<scope>Public</scope>\n  <restriction>staff only</restriction>"),
        "/alert/restriction",
        "only for scope Restricted",
    );
}

#[test]
fn identifiers_have_no_spaces_commas_or_restricted_characters() {
    refused_with(&A1.replace("SC-ADV-20261128-001", "SC ADV,001"), "/alert/identifier", "must not contain spaces");
}

#[test]
fn a_dtd_is_refused_and_no_entity_is_ever_resolved() {
    let xxe = A1.replace(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE alert [<!ENTITY secret SYSTEM \"file:///etc/passwd\">]>",
    )
    .replace("全省公共安全预警提升至橙色", "&secret;");
    let found = problems(&xxe);
    assert_eq!(found.len(), 1);
    assert!(found[0].reason.contains("DTD"), "{found:?}");
}

#[test]
fn every_problem_is_listed_not_only_the_first() {
    let broken = A2
        .replace("<status>Actual</status>", "<status>Real</status>")
        .replace("2026-11-28T09:30:00+08:00", "soon")
        .replace("29.20,105.35 29.20,105.95 29.85,105.95 29.85,105.35 29.20,105.35", "29.20,105.35");
    let paths: Vec<String> = problems(&broken).into_iter().map(|p| p.path).collect();
    assert_eq!(paths, ["/alert/status", "/alert/info[1]/expires", "/alert/info[1]/area[1]/polygon[1]"]);
}

#[test]
fn other_documents_are_refused_clearly() {
    assert!(problems("<alert>no namespace</alert>")[0].reason.contains("CAP 1.2 namespace"));
    assert!(problems("<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">")[0].reason.contains("not well-formed"));
    assert!(parse(&[b'<', 0xc3, 0x28]).unwrap_err()[0].reason.contains("not valid UTF-8"));
    assert!(parse(&[0xff, 0xfe, 0x00]).unwrap_err()[0].reason.contains("not valid UTF-16LE"));
    refused_with(
        &A1.replace("<note>", "").replace("<scope>Public</scope>", "<scope>Public</scope><color>red</color>"),
        "/alert/color",
        "not a CAP 1.2 element",
    );
}

/// A1 declared in `encoding`, its text encoded so.
fn a1_in(encoding: &'static encoding_rs::Encoding, label: &str) -> Vec<u8> {
    let text = A1.replace("encoding=\"UTF-8\"", &format!("encoding=\"{label}\""));
    encoding.encode(&text).0.into_owned()
}

#[test]
fn a_document_is_decoded_as_its_declaration_and_byte_order_mark_say() {
    // Latin-1 as a national agency sends it: é is one byte, 0xE9.
    let latin = A1
        .replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"")
        .replace("<event>公共安全预警等级调整</event>", "<event>Séisme</event>")
        .replace("<headline>全省公共安全预警提升至橙色</headline>", "<headline>Séisme</headline>");
    let bytes = encoding_rs::WINDOWS_1252.encode(&latin).0.into_owned();
    assert!(bytes.contains(&0xE9) && std::str::from_utf8(&bytes).is_err());
    let alert = parse(&bytes).unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(alert.infos[0].event, "Séisme");

    // GB18030, and UTF-16 with its byte-order mark, decode to the same alert as UTF-8.
    let gb = parse(&a1_in(encoding_rs::GB18030, "GB18030")).unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(gb.infos[0].event, "公共安全预警等级调整");
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in A1.replace("encoding=\"UTF-8\"", "encoding=\"UTF-16\"").encode_utf16() {
        utf16.extend(unit.to_le_bytes());
    }
    assert_eq!(parse(&utf16).unwrap_or_else(|p| panic!("{p:#?}")).infos[0].event, "公共安全预警等级调整");
}

#[test]
fn bytes_the_declared_encoding_cannot_read_are_refused() {
    // UTF-8 bytes declared UTF-16: no byte-order mark, and ASCII-compatible.
    refused_with(&A1.replace("encoding=\"UTF-8\"", "encoding=\"UTF-16\""), "/", "not UTF-16");
    // UTF-8 bytes declared GB18030, where a character's last byte meets `<`.
    let declared_gb = A1
        .replace("encoding=\"UTF-8\"", "encoding=\"GB18030\"")
        .replace("<event>公共安全预警等级调整</event>", "<event>暴</event>");
    refused_with(&declared_gb, "/", "not valid gb18030");
    refused_with(&A1.replace("encoding=\"UTF-8\"", "encoding=\"klingon\""), "/", "does not know");
    // Latin-1 bytes without a declaration are not UTF-8.
    let latin = encoding_rs::WINDOWS_1252
        .encode(
            &A1.replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "").replace("公共安全预警等级调整", "Séisme"),
        )
        .0
        .into_owned();
    assert!(parse(&latin).unwrap_err()[0].reason.contains("not valid UTF-8"));
    // A mark that disagrees with the declaration.
    let mut marked = vec![0xEF, 0xBB, 0xBF];
    marked.extend(A1.replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"").as_bytes());
    assert!(parse(&marked).unwrap_err()[0].reason.contains("byte-order mark says UTF-8"));
}

#[test]
fn characters_xml_forbids_are_refused() {
    let with = |text: &str| A1.replace("<event>公共安全预警等级调整</event>", &format!("<event>{text}</event>"));
    refused_with(&with("&#xD800;"), "/", "surrogate");
    refused_with(&with("&#55296;"), "/", "surrogate");
    assert!(parse(with("&#x1;").as_bytes()).is_err());
    assert!(parse(with("\u{1}").as_bytes()).is_err());
    assert!(parse(with("&#x4E2D;").as_bytes()).is_ok(), "an ordinary reference is fine");
}
