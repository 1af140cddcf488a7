//! The gRPC front end; the county's token travels as `authorization: Bearer <token>` metadata.

use bashu_proto::ingest::v1::{
    FieldProblem, ItemError, ItemResult, SubmitStoriesRequest, SubmitStoriesResponse, SubmitStoryRequest,
    SubmitStoryResponse,
    ingest_service_server::{IngestService, IngestServiceServer},
    item_result::Outcome,
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

impl IngestApi {
    async fn county<T>(&self, request: &Request<T>) -> Result<String, Status> {
        let authorization = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
        self.ingest.authenticate(authorization).await.map_err(|e| e.to_status())
    }
}

#[tonic::async_trait]
impl IngestService for IngestApi {
    async fn submit_story(
        &self,
        request: Request<SubmitStoryRequest>,
    ) -> Result<Response<SubmitStoryResponse>, Status> {
        let county = self.county(&request).await?;
        let story = request
            .into_inner()
            .story
            .ok_or_else(|| Error::Invalid(vec![FieldError::new("story", "required")]).to_status())?;
        let mut answers = self.ingest.submit_as(&county, vec![story], "grpc").await.map_err(|e| e.to_status())?;
        answers.pop().expect("one answer per story").map(Response::new).map_err(|e| e.to_status())
    }

    async fn submit_stories(
        &self,
        request: Request<SubmitStoriesRequest>,
    ) -> Result<Response<SubmitStoriesResponse>, Status> {
        let county = self.county(&request).await?;
        let stories = request.into_inner().stories;
        let answers = self.ingest.submit_as(&county, stories, "grpc").await.map_err(|e| e.to_status())?;
        let results = answers
            .into_iter()
            .map(|answer| ItemResult {
                outcome: Some(match answer {
                    Ok(accepted) => Outcome::Accepted(accepted),
                    Err(error) => Outcome::Error(ItemError {
                        code: error.code().to_owned(),
                        message: error.to_string(),
                        fields: error
                            .fields()
                            .iter()
                            .map(|f| FieldProblem { field: f.field.clone(), reason: f.reason.clone() })
                            .collect(),
                    }),
                }),
            })
            .collect();
        Ok(Response::new(SubmitStoriesResponse { results }))
    }
}
