//! CAP 1.2 in: strict validation of an XML document against the CAP 1.2 schema's structure
//! (element order, occurrences, value sets) and the specification's textual rules, listing every
//! problem with its element path, and the conversion to the protobuf `Alert`.
//!
//! The XML is read by roxmltree with DTDs refused, so no entity, internal or external, is ever
//! expanded or fetched.

mod schema;

use bashu_proto::{
    Timestamp,
    alert::v1::{
        Alert, Area, Category, Certainty, Circle, Info, MsgType, NamedValue, Point, Polygon, Reference, Resource,
        ResponseType, Scope, Severity, Status, Urgency,
    },
};
use roxmltree::{Document, Node, ParsingOptions};
use schema::Sequence;
use serde::Serialize;
use time::{OffsetDateTime, format_description::BorrowedFormatItem, macros::format_description};

/// The CAP 1.2 XML namespace.
pub const CAP_12_NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";

/// At most this many XML nodes in one document.
const MAX_NODES: u32 = 50_000;

/// One thing wrong with a CAP document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where, for example `/alert/info[1]/area[2]/polygon[1]`; `/` for the document itself.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// CAP's date-time: seconds, and an explicit offset (`Z` and fractions are not CAP 1.2).
const DATE_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]");

/// The document as text, decoded as XML 1.0 (appendix F) says: by its byte-order mark, else by
/// the encoding its declaration names, else as UTF-8. Bytes that are not valid in that encoding,
/// an encoding nobody knows, or a mark and a declaration that disagree are refused.
fn decode(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, String> {
    use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};
    let (encoding, body) = match Encoding::for_bom(bytes) {
        Some((encoding, mark)) => (Some(encoding), &bytes[mark..]),
        // UTF-16 without a mark still starts with `<?` in two bytes each.
        None if bytes.starts_with(&[0x3C, 0, 0x3F, 0]) => (Some(UTF_16LE), bytes),
        None if bytes.starts_with(&[0, 0x3C, 0, 0x3F]) => (Some(UTF_16BE), bytes),
        None => (None, bytes),
    };
    let is_utf16 = |e: &'static Encoding| e == UTF_16LE || e == UTF_16BE;
    let declared = |text: &str| declared_encoding(text).map(str::to_owned);
    match encoding {
        Some(encoding) => {
            let text = encoding
                .decode_without_bom_handling_and_without_replacement(body)
                .ok_or_else(|| format!("not valid {}: the byte-order mark says so", encoding.name()))?;
            if let Some(label) = declared(&text) {
                let named = Encoding::for_label(label.as_bytes());
                let agrees = named.is_some_and(|named| named == encoding || (is_utf16(named) && is_utf16(encoding)));
                if !agrees {
                    return Err(format!(
                        "the byte-order mark says {} but the declaration says {label:?}",
                        encoding.name()
                    ));
                }
            }
            Ok(std::borrow::Cow::Owned(text.into_owned()))
        }
        None => {
            // The declaration is ASCII in every encoding that is not UTF-16.
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]);
            let encoding = match declared(&head) {
                None => UTF_8,
                Some(label) => match Encoding::for_label(label.as_bytes()) {
                    Some(encoding) if is_utf16(encoding) => {
                        return Err(format!("declared {label:?}, but these bytes are not UTF-16 (no byte-order mark)"));
                    }
                    Some(encoding) if encoding != encoding_rs::REPLACEMENT => encoding,
                    _ => return Err(format!("declared in {label:?}, an encoding Bashu does not know")),
                },
            };
            encoding.decode_without_bom_handling_and_without_replacement(body).ok_or_else(|| {
                format!("not valid {}, the encoding it declares (or UTF-8, XML's default)", encoding.name())
            })
        }
    }
}

/// The `encoding` of an XML declaration at the start of `text`, if it names one.
fn declared_encoding(text: &str) -> Option<&str> {
    let declaration = text.strip_prefix("<?xml")?;
    let declaration = &declaration[..declaration.find("?>")?];
    let at = declaration.find("encoding")?;
    let rest = declaration[at + "encoding".len()..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(&value[..value.find(quote)?])
}

/// A character reference to a surrogate (`&#xD800;`): XML forbids the character, and the parser
/// would quietly replace it. Other forbidden characters the parser refuses itself.
fn forbidden_reference(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(at) = rest.find("&#") {
        rest = &rest[at + 2..];
        let end = rest.find(';')?;
        let reference = &rest[..end];
        let value = match reference.strip_prefix('x') {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => reference.parse::<u32>().ok(),
        };
        if value.is_some_and(|v| (0xD800..=0xDFFF).contains(&v)) {
            let line = text[..text.len() - rest.len()].lines().count();
            return Some(format!("&#{reference}; on line {line} names a surrogate, a character XML does not allow"));
        }
    }
    None
}

/// A time as CAP writes it (in UTC), for messages; `-` for none.
pub(crate) fn format_time(time: Option<&bashu_proto::Timestamp>) -> String {
    time.and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| t.format(DATE_TIME).ok())
        .unwrap_or_else(|| "-".into())
}

/// Parses and validates a CAP 1.2 document. Every problem is reported, not only the first.
pub fn parse(bytes: &[u8]) -> Result<Alert, Vec<Problem>> {
    parse_with_text(bytes).map(|(alert, _)| alert)
}

/// [`parse`], also handing back the document as text (decoded once, for the XML signature).
pub(crate) fn parse_with_text(bytes: &[u8]) -> Result<(Alert, std::borrow::Cow<'_, str>), Vec<Problem>> {
    let problem = |reason: String| vec![Problem { path: "/".into(), reason }];
    let decoded = decode(bytes).map_err(problem)?;
    if let Some(reason) = forbidden_reference(&decoded) {
        return Err(problem(reason));
    }
    let text = decoded.as_ref();
    let options = ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES, ..ParsingOptions::default() };
    let document =
        Document::parse_with_options(text, options).map_err(|e| problem(format!("not well-formed XML: {e}")))?;
    let root = document.root_element();
    if root.tag_name().name() != "alert" || root.tag_name().namespace() != Some(CAP_12_NAMESPACE) {
        return Err(problem(format!(
            "the root element must be <alert> in the CAP 1.2 namespace {CAP_12_NAMESPACE}, found <{}> in {:?}",
            root.tag_name().name(),
            root.tag_name().namespace().unwrap_or("no namespace")
        )));
    }
    let mut walker = Walker::default();
    let alert = walker.alert(root);
    if walker.problems.is_empty() { Ok((alert, decoded)) } else { Err(walker.problems) }
}

/// The child elements of one element, checked against its sequence, with their paths.
struct Children<'a, 'input> {
    path: String,
    found: Vec<(&'static str, Node<'a, 'input>, String)>,
}

impl<'a, 'input> Children<'a, 'input> {
    fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = (Node<'a, 'input>, &'s str)> + 's {
        self.found.iter().filter(move |(n, _, _)| *n == name).map(|(_, node, path)| (*node, path.as_str()))
    }

    fn one<'s>(&'s self, name: &'s str) -> Option<(Node<'a, 'input>, &'s str)> {
        self.all(name).next()
    }
}

#[derive(Default)]
struct Walker {
    problems: Vec<Problem>,
}

impl Walker {
    fn fail(&mut self, path: &str, reason: impl Into<String>) {
        self.problems.push(Problem { path: path.to_owned(), reason: reason.into() });
    }

    /// Checks the children of `node` against `sequence`: order, occurrences, nothing unexpected.
    fn children<'a, 'input>(&mut self, node: Node<'a, 'input>, path: &str, sequence: Sequence) -> Children<'a, 'input> {
        let mut counts = vec![0usize; sequence.len()];
        let mut position = 0;
        let mut found = Vec::new();
        for child in node.children() {
            if child.is_text() && !child.text().unwrap_or("").trim().is_empty() {
                self.fail(path, "text is not allowed here, only elements");
                continue;
            }
            if !child.is_element() {
                continue;
            }
            let name = child.tag_name().name();
            if child.tag_name().namespace() != Some(CAP_12_NAMESPACE) {
                // Other namespaces (an XML signature, say) are allowed and ignored inside <alert>.
                if path != "/alert" {
                    self.fail(&format!("{path}/{name}"), "element from another namespace");
                }
                continue;
            }
            let Some(index) = sequence.iter().position(|(expected, _)| *expected == name) else {
                self.fail(&format!("{path}/{name}"), format!("<{name}> is not a CAP 1.2 element here"));
                continue;
            };
            counts[index] += 1;
            let (field, occurs) = sequence[index];
            let child_path =
                if occurs.repeats() { format!("{path}/{name}[{}]", counts[index]) } else { format!("{path}/{name}") };
            if index < position {
                self.fail(&child_path, format!("out of order: <{name}> must come before <{}>", sequence[position].0));
            } else {
                position = index;
            }
            if counts[index] > 1 && !occurs.repeats() {
                self.fail(&child_path, format!("<{name}> may occur only once"));
            }
            found.push((field, child, child_path));
        }
        for ((name, occurs), count) in sequence.iter().zip(&counts) {
            if *count < occurs.min() {
                self.fail(path, format!("missing required <{name}>"));
            }
        }
        Children { path: path.to_owned(), found }
    }

    /// The text of a simple element, trimmed.
    fn text(&mut self, node: Node<'_, '_>, path: &str) -> String {
        if node.children().any(|c| c.is_element()) {
            self.fail(path, "must hold text only");
        }
        node.text().unwrap_or("").trim().to_owned()
    }

    fn optional_text(&mut self, children: &Children<'_, '_>, name: &str) -> String {
        match children.one(name) {
            Some((node, path)) => {
                let path = path.to_owned();
                self.text(node, &path)
            }
            None => String::new(),
        }
    }

    fn required_text(&mut self, children: &Children<'_, '_>, name: &str) -> Option<(String, String)> {
        let (node, path) = children.one(name)?;
        let path = path.to_owned();
        let text = self.text(node, &path);
        if text.is_empty() {
            self.fail(&path, "must not be empty");
        }
        Some((text, path))
    }

    fn date_time(&mut self, text: &str, path: &str) -> Option<Timestamp> {
        match OffsetDateTime::parse(text, DATE_TIME) {
            Ok(t) => Some(Timestamp { seconds: t.unix_timestamp(), nanos: 0 }),
            Err(_) => {
                self.fail(
                    path,
                    format!("{text:?} is not a CAP date-time (YYYY-MM-DDThh:mm:ss with an offset such as +08:00, no fractions, no Z)"),
                );
                None
            }
        }
    }

    fn optional_date_time(&mut self, children: &Children<'_, '_>, name: &str) -> Option<Timestamp> {
        let (text, path) = self.required_text(children, name)?;
        self.date_time(&text, &path)
    }

    fn choice<T: Copy>(&mut self, text: &str, path: &str, values: &[(&str, T)]) -> Option<T> {
        match values.iter().find(|(name, _)| *name == text) {
            Some((_, value)) => Some(*value),
            None => {
                let allowed = values.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
                self.fail(path, format!("{text:?} is not one of {allowed}"));
                None
            }
        }
    }

    fn choices<T: Copy + Into<i32>>(
        &mut self,
        parent: &Children<'_, '_>,
        name: &str,
        values: &[(&str, T)],
    ) -> Vec<i32> {
        let nodes: Vec<_> = parent.all(name).map(|(n, p)| (n, p.to_owned())).collect();
        nodes
            .into_iter()
            .filter_map(|(node, path)| {
                let text = self.text(node, &path);
                self.choice(&text, &path, values).map(Into::into)
            })
            .collect()
    }

    fn required_choice<T: Copy>(&mut self, children: &Children<'_, '_>, name: &str, values: &[(&str, T)]) -> Option<T> {
        let (text, path) = self.required_text(children, name)?;
        self.choice(&text, &path, values)
    }

    /// identifier and sender: no spaces, commas or restricted characters.
    fn id_text(&mut self, children: &Children<'_, '_>, name: &str) -> String {
        let Some((text, path)) = self.required_text(children, name) else { return String::new() };
        if text.chars().any(|c| c.is_whitespace() || c == ',' || c == '<' || c == '&') {
            self.fail(&path, "must not contain spaces, commas, < or &");
        }
        text
    }

    fn alert(&mut self, root: Node<'_, '_>) -> Alert {
        let children = self.children(root, "/alert", schema::ALERT);
        let identifier = self.id_text(&children, "identifier");
        let sender = self.id_text(&children, "sender");
        let sent = self.optional_date_time(&children, "sent");
        let status = self.required_choice(&children, "status", STATUS).unwrap_or(Status::Unspecified);
        let msg_type = self.required_choice(&children, "msgType", MSG_TYPE).unwrap_or(MsgType::Unspecified);
        let scope = self.required_choice(&children, "scope", SCOPE).unwrap_or(Scope::Unspecified);
        let restriction = self.optional_text(&children, "restriction");
        let addresses = self.optional_text(&children, "addresses");
        if scope == Scope::Restricted && restriction.is_empty() {
            self.fail("/alert", "<restriction> is required when scope is Restricted");
        }
        if scope != Scope::Restricted && !restriction.is_empty() {
            self.fail("/alert/restriction", "<restriction> is only for scope Restricted");
        }
        if scope == Scope::Private && addresses.is_empty() {
            self.fail("/alert", "<addresses> is required when scope is Private");
        }
        let codes = children.all("code").map(|(n, _)| n.text().unwrap_or("").trim().to_owned()).collect();
        let references = match children.one("references") {
            Some((node, path)) => {
                let path = path.to_owned();
                let text = self.text(node, &path);
                self.references(&text, &path, &sender, &identifier)
            }
            None => Vec::new(),
        };
        if matches!(msg_type, MsgType::Update | MsgType::Cancel)
            && references.is_empty()
            && children.one("references").is_none()
        {
            self.fail("/alert", "an Update or Cancel must name the messages it refers to in <references>");
        }
        let infos = children
            .all("info")
            .map(|(node, path)| (node, path.to_owned()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(node, path)| self.info(node, &path))
            .collect();
        Alert {
            identifier,
            sender,
            sent,
            status: status as i32,
            msg_type: msg_type as i32,
            source: self.optional_text(&children, "source"),
            scope: scope as i32,
            restriction,
            addresses,
            codes,
            note: self.optional_text(&children, "note"),
            references,
            incidents: self.optional_text(&children, "incidents"),
            infos,
        }
    }

    fn references(&mut self, text: &str, path: &str, sender: &str, identifier: &str) -> Vec<Reference> {
        if text.is_empty() {
            self.fail(path, "empty: list sender,identifier,sent triples separated by spaces");
            return Vec::new();
        }
        let mut references = Vec::new();
        for triple in text.split_whitespace() {
            let parts: Vec<&str> = triple.split(',').collect();
            let [ref_sender, ref_identifier, ref_sent] = parts[..] else {
                self.fail(path, format!("{triple:?} is not a sender,identifier,sent triple"));
                continue;
            };
            if ref_sender.is_empty() || ref_identifier.is_empty() {
                self.fail(path, format!("{triple:?} has an empty sender or identifier"));
                continue;
            }
            if ref_sender == sender && ref_identifier == identifier {
                self.fail(path, "a message must not reference itself");
                continue;
            }
            let sent = self.date_time(ref_sent, path);
            references.push(Reference { sender: ref_sender.into(), identifier: ref_identifier.into(), sent });
        }
        references
    }

    fn info(&mut self, node: Node<'_, '_>, path: &str) -> Info {
        let children = self.children(node, path, schema::INFO);
        let categories = self.choices(&children, "category", CATEGORY);
        let response_types = self.choices(&children, "responseType", RESPONSE_TYPE);
        let language = self.optional_text(&children, "language");
        Info {
            language: if language.is_empty() { "en-US".into() } else { language },
            categories,
            event: self.required_text(&children, "event").map(|(t, _)| t).unwrap_or_default(),
            response_types,
            urgency: self.required_choice(&children, "urgency", URGENCY).unwrap_or(Urgency::Unspecified) as i32,
            severity: self.required_choice(&children, "severity", SEVERITY).unwrap_or(Severity::Unspecified) as i32,
            certainty: self.required_choice(&children, "certainty", CERTAINTY).unwrap_or(Certainty::Unspecified) as i32,
            audience: self.optional_text(&children, "audience"),
            event_codes: self.named_values(&children, "eventCode"),
            effective: self.optional_date_time(&children, "effective"),
            onset: self.optional_date_time(&children, "onset"),
            expires: self.optional_date_time(&children, "expires"),
            sender_name: self.optional_text(&children, "senderName"),
            headline: self.optional_text(&children, "headline"),
            description: children.one("description").and_then(|(n, _)| n.text()).unwrap_or("").to_owned(),
            instruction: children.one("instruction").and_then(|(n, _)| n.text()).unwrap_or("").to_owned(),
            web: self.optional_text(&children, "web"),
            contact: self.optional_text(&children, "contact"),
            parameters: self.named_values(&children, "parameter"),
            resources: self.resources(&children),
            areas: self.areas(&children),
        }
    }

    fn named_values(&mut self, parent: &Children<'_, '_>, name: &str) -> Vec<NamedValue> {
        let nodes: Vec<_> = parent.all(name).map(|(n, p)| (n, p.to_owned())).collect();
        nodes
            .into_iter()
            .map(|(node, path)| {
                let children = self.children(node, &path, schema::NAMED_VALUE);
                NamedValue {
                    value_name: self.required_text(&children, "valueName").map(|(t, _)| t).unwrap_or_default(),
                    value: self.optional_text(&children, "value"),
                }
            })
            .collect()
    }

    fn resources(&mut self, parent: &Children<'_, '_>) -> Vec<Resource> {
        let nodes: Vec<_> = parent.all("resource").map(|(n, p)| (n, p.to_owned())).collect();
        nodes
            .into_iter()
            .map(|(node, path)| {
                let children = self.children(node, &path, schema::RESOURCE);
                let size = self.required_text(&children, "size").and_then(|(text, path)| match text.parse::<u64>() {
                    Ok(size) => Some(size),
                    Err(_) => {
                        self.fail(&path, format!("{text:?} is not a whole number of bytes"));
                        None
                    }
                });
                Resource {
                    resource_desc: self.required_text(&children, "resourceDesc").map(|(t, _)| t).unwrap_or_default(),
                    mime_type: self.required_text(&children, "mimeType").map(|(t, _)| t).unwrap_or_default(),
                    size,
                    uri: self.optional_text(&children, "uri"),
                    deref_uri: self.optional_text(&children, "derefUri"),
                    digest: self.optional_text(&children, "digest"),
                }
            })
            .collect()
    }

    fn areas(&mut self, parent: &Children<'_, '_>) -> Vec<Area> {
        let nodes: Vec<_> = parent.all("area").map(|(n, p)| (n, p.to_owned())).collect();
        nodes
            .into_iter()
            .map(|(node, path)| {
                let children = self.children(node, &path, schema::AREA);
                let polygons = children
                    .all("polygon")
                    .map(|(n, p)| (n, p.to_owned()))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .filter_map(|(n, p)| {
                        let text = self.text(n, &p);
                        self.polygon(&text, &p)
                    })
                    .collect();
                let circles = children
                    .all("circle")
                    .map(|(n, p)| (n, p.to_owned()))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .filter_map(|(n, p)| {
                        let text = self.text(n, &p);
                        self.circle(&text, &p)
                    })
                    .collect();
                let altitude = self.number(&children, "altitude");
                let ceiling = self.number(&children, "ceiling");
                if ceiling.is_some() && altitude.is_none() {
                    self.fail(&children.path, "<ceiling> needs <altitude>");
                }
                Area {
                    area_desc: self.required_text(&children, "areaDesc").map(|(t, _)| t).unwrap_or_default(),
                    polygons,
                    circles,
                    geocodes: self.named_values(&children, "geocode"),
                    altitude,
                    ceiling,
                }
            })
            .collect()
    }

    fn number(&mut self, children: &Children<'_, '_>, name: &str) -> Option<f64> {
        let (text, path) = self.required_text(children, name)?;
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Some(value),
            _ => {
                self.fail(&path, format!("{text:?} is not a number"));
                None
            }
        }
    }

    /// A `lat,lon` pair of decimal degrees; anything else is a problem at `path`.
    fn point(&mut self, pair: &str, path: &str) -> Option<Point> {
        let number = |text: &str| text.trim().parse::<f64>().ok().filter(|n| n.is_finite());
        let parsed = pair.split_once(',').and_then(|(lat, lon)| Some((number(lat)?, number(lon)?)));
        let Some((lat, lon)) = parsed else {
            self.fail(path, format!("{pair:?} is not a lat,lon pair of decimal degrees"));
            return None;
        };
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            self.fail(path, format!("{pair:?}: latitude must be within ±90 and longitude within ±180"));
            return None;
        }
        Some(Point { lat, lon })
    }

    fn polygon(&mut self, text: &str, path: &str) -> Option<Polygon> {
        let pairs: Vec<&str> = text.split_whitespace().collect();
        let mut points = Vec::with_capacity(pairs.len());
        for pair in &pairs {
            points.push(self.point(pair, path)?);
        }
        if points.len() < 4 {
            self.fail(path, format!("a polygon needs at least four points, found {}", points.len()));
            return None;
        }
        if points.first() != points.last() {
            self.fail(path, "a polygon must be closed: its first and last points must be the same");
            return None;
        }
        Some(Polygon { points })
    }

    fn circle(&mut self, text: &str, path: &str) -> Option<Circle> {
        let Some((centre, radius)) = text.split_once(char::is_whitespace) else {
            self.fail(path, format!("{text:?} is not \"lat,lon radius\""));
            return None;
        };
        let center = self.point(centre, path)?;
        match radius.trim().parse::<f64>() {
            Ok(radius_km) if radius_km.is_finite() && radius_km >= 0.0 => {
                Some(Circle { center: Some(center), radius_km })
            }
            _ => {
                self.fail(path, format!("{radius:?} is not a radius in kilometres"));
                None
            }
        }
    }
}

const STATUS: &[(&str, Status)] = &[
    ("Actual", Status::Actual),
    ("Exercise", Status::Exercise),
    ("System", Status::System),
    ("Test", Status::Test),
    ("Draft", Status::Draft),
];
const MSG_TYPE: &[(&str, MsgType)] = &[
    ("Alert", MsgType::Alert),
    ("Update", MsgType::Update),
    ("Cancel", MsgType::Cancel),
    ("Ack", MsgType::Ack),
    ("Error", MsgType::Error),
];
const SCOPE: &[(&str, Scope)] =
    &[("Public", Scope::Public), ("Restricted", Scope::Restricted), ("Private", Scope::Private)];
const CATEGORY: &[(&str, Category)] = &[
    ("Geo", Category::Geo),
    ("Met", Category::Met),
    ("Safety", Category::Safety),
    ("Security", Category::Security),
    ("Rescue", Category::Rescue),
    ("Fire", Category::Fire),
    ("Health", Category::Health),
    ("Env", Category::Env),
    ("Transport", Category::Transport),
    ("Infra", Category::Infra),
    ("CBRNE", Category::Cbrne),
    ("Other", Category::Other),
];
const RESPONSE_TYPE: &[(&str, ResponseType)] = &[
    ("Shelter", ResponseType::Shelter),
    ("Evacuate", ResponseType::Evacuate),
    ("Prepare", ResponseType::Prepare),
    ("Execute", ResponseType::Execute),
    ("Avoid", ResponseType::Avoid),
    ("Monitor", ResponseType::Monitor),
    ("Assess", ResponseType::Assess),
    ("AllClear", ResponseType::AllClear),
    ("None", ResponseType::None),
];
const URGENCY: &[(&str, Urgency)] = &[
    ("Immediate", Urgency::Immediate),
    ("Expected", Urgency::Expected),
    ("Future", Urgency::Future),
    ("Past", Urgency::Past),
    ("Unknown", Urgency::Unknown),
];
const SEVERITY: &[(&str, Severity)] = &[
    ("Extreme", Severity::Extreme),
    ("Severe", Severity::Severe),
    ("Moderate", Severity::Moderate),
    ("Minor", Severity::Minor),
    ("Unknown", Severity::Unknown),
];
const CERTAINTY: &[(&str, Certainty)] = &[
    ("Observed", Certainty::Observed),
    ("Likely", Certainty::Likely),
    ("Possible", Certainty::Possible),
    ("Unlikely", Certainty::Unlikely),
    ("Unknown", Certainty::Unknown),
];

#[cfg(test)]
mod tests;
