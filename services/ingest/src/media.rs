//! Media a county uploads (`POST /v1/media`, multipart): kept in the JetStream object store
//! under its sha256 digest, referenced from a story as `bashu-object:<sha256>`, fetched by any
//! county with `GET /v1/media/<sha256>`.

use std::collections::BTreeMap;

use async_nats::jetstream::object_store::{ObjectMetadata, ObjectStore};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::{Error, Result};

/// The scheme of a stored object's reference in `Story.media[].uri`.
pub const OBJECT_SCHEME: &str = "bashu-object:";

/// Size limits per media type: the longest matching prefix wins (`image/` for every image).
pub fn default_limits() -> BTreeMap<String, usize> {
    const MIB: usize = 1024 * 1024;
    BTreeMap::from([
        ("image/".to_owned(), 10 * MIB),
        ("audio/".to_owned(), 50 * MIB),
        ("video/".to_owned(), 200 * MIB),
        ("application/pdf".to_owned(), 20 * MIB),
    ])
}

/// The limit for a media type, or None: not accepted at all.
pub fn limit_for(limits: &BTreeMap<String, usize>, media_type: &str) -> Option<usize> {
    limits
        .iter()
        .filter(|(prefix, _)| media_type.starts_with(prefix.as_str()))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, l)| *l)
}

/// What an upload answers.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMedia {
    /// Put this in `Story.media[].uri`.
    pub uri: String,
    /// Hex sha256 of the bytes.
    pub sha256: String,
    /// How many bytes.
    pub size_bytes: u64,
    /// As uploaded.
    pub media_type: String,
}

/// Stores the bytes under their digest (the same bytes twice are one object).
pub async fn store(objects: &ObjectStore, media_type: &str, bytes: Vec<u8>, uploader: &str) -> Result<StoredMedia> {
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let size_bytes = bytes.len() as u64;
    if objects.info(&sha256).await.is_err() {
        let metadata = ObjectMetadata {
            name: sha256.clone(),
            description: Some(media_type.to_owned()),
            metadata: std::collections::HashMap::from([("uploaded-by".to_owned(), uploader.to_owned())]),
            ..Default::default()
        };
        objects.put(metadata, &mut bytes.as_slice()).await.map_err(Error::store)?;
    }
    Ok(StoredMedia { uri: format!("{OBJECT_SCHEME}{sha256}"), sha256, size_bytes, media_type: media_type.to_owned() })
}

/// The bytes and media type of a stored object.
pub async fn fetch(objects: &ObjectStore, sha256: &str) -> Result<(String, Vec<u8>)> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NotFound("a media reference is 64 hex digits".into()));
    }
    let mut object = objects.get(sha256).await.map_err(|_| Error::NotFound(format!("no media {sha256}")))?;
    let media_type = object.info().description.clone().unwrap_or_else(|| "application/octet-stream".into());
    let mut bytes = Vec::new();
    object.read_to_end(&mut bytes).await.map_err(Error::store)?;
    Ok((media_type, bytes))
}
