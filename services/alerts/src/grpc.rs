//! The gRPC front end.

use bashu_proto::alert::v1::{
    AcknowledgeAlertRequest, AcknowledgeAlertResponse, AlertAccepted, AlertChain, GetAlertStatusRequest, MsgType,
    SignedCap, ValidateAlertRequest, ValidateAlertResponse,
    alert_service_server::{AlertService, AlertServiceServer},
};
use tonic::{Request, Response, Status};

use crate::{Alerts, Callers, Submission};

/// `bashu.alert.v1.AlertService` over [`Alerts`].
pub struct AlertApi {
    alerts: Alerts,
    callers: Callers,
}

pub(crate) fn service(alerts: Alerts, callers: Callers) -> AlertServiceServer<AlertApi> {
    let limit = alerts.inner.config.max_document_bytes + 4096;
    AlertServiceServer::new(AlertApi { alerts, callers }).max_decoding_message_size(limit)
}

fn authorization<T>(request: &Request<T>) -> Option<&str> {
    request.metadata().get("authorization").and_then(|v| v.to_str().ok())
}

impl AlertApi {
    async fn submit(&self, request: Request<SignedCap>, expected: MsgType) -> Result<Response<AlertAccepted>, Status> {
        let signed = request.into_inner();
        let submission = Submission {
            desk_id: &signed.desk_id,
            timestamp: signed.timestamp,
            signature: &signed.signature,
            cap_xml: &signed.cap_xml,
        };
        self.alerts.submit(submission, Some(expected)).await.map(Response::new).map_err(|e| e.to_status())
    }
}

#[tonic::async_trait]
impl AlertService for AlertApi {
    async fn issue_alert(&self, request: Request<SignedCap>) -> Result<Response<AlertAccepted>, Status> {
        self.submit(request, MsgType::Alert).await
    }

    async fn update_alert(&self, request: Request<SignedCap>) -> Result<Response<AlertAccepted>, Status> {
        self.submit(request, MsgType::Update).await
    }

    async fn cancel_alert(&self, request: Request<SignedCap>) -> Result<Response<AlertAccepted>, Status> {
        self.submit(request, MsgType::Cancel).await
    }

    async fn validate_alert(
        &self,
        request: Request<ValidateAlertRequest>,
    ) -> Result<Response<ValidateAlertResponse>, Status> {
        Ok(Response::new(self.alerts.validate(&request.into_inner().cap_xml)))
    }

    async fn acknowledge_alert(
        &self,
        request: Request<AcknowledgeAlertRequest>,
    ) -> Result<Response<AcknowledgeAlertResponse>, Status> {
        let acting = self.callers.identify(authorization(&request)).await.map_err(|e| e.to_status())?;
        let request = request.into_inner();
        let county = self.alerts.county_code(&request.county).map_err(|e| e.to_status())?;
        acting.may_acknowledge(&county, |desk| self.alerts.desk_areas(desk)).map_err(|e| e.to_status())?;
        self.alerts
            .acknowledge(
                &request.alert_key,
                &request.county,
                &request.acknowledged_by,
                &request.note,
                acting.recorder("/bashu.alert.v1.AlertService/AcknowledgeAlert"),
            )
            .await
            .map(|()| Response::new(AcknowledgeAlertResponse {}))
            .map_err(|e| e.to_status())
    }

    async fn get_alert_status(&self, request: Request<GetAlertStatusRequest>) -> Result<Response<AlertChain>, Status> {
        let acting = self.callers.identify(authorization(&request)).await.map_err(|e| e.to_status())?;
        let chain = self.alerts.status(&request.into_inner().alert_key).await.map_err(|e| e.to_status())?;
        acting.may_read(&chain).map_err(|e| e.to_status())?;
        Ok(Response::new(chain))
    }
}
