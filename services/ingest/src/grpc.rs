//! The gRPC front end.

use bashu_proto::ingest::v1::{
    SubmitStoryRequest, SubmitStoryResponse,
    ingest_service_server::{IngestService, IngestServiceServer},
};
use tonic::{Request, Response, Status};

use crate::{Error, FieldError, Ingest};

/// `bashu.ingest.v1.IngestService` over [`Ingest`].
pub struct IngestApi {
    ingest: Ingest,
}

pub(crate) fn service(ingest: Ingest) -> IngestServiceServer<IngestApi> {
    let limit = ingest.max_body_bytes();
    IngestServiceServer::new(IngestApi { ingest }).max_decoding_message_size(limit)
}

#[tonic::async_trait]
impl IngestService for IngestApi {
    async fn submit_story(
        &self,
        request: Request<SubmitStoryRequest>,
    ) -> Result<Response<SubmitStoryResponse>, Status> {
        let story = request
            .into_inner()
            .story
            .ok_or_else(|| Error::Invalid(vec![FieldError::new("story", "required")]).to_status())?;
        self.ingest.submit(story, "grpc").await.map(Response::new).map_err(|e| e.to_status())
    }
}
