//! The registry through the admin gRPC API.

use bashu_proto::admin::v1::{
    GetCountyRequest, ListAlliancesRequest, ListCountiesRequest, registry_service_client::RegistryServiceClient,
};
use bashu_tests::TestSystem;

#[tokio::test]
async fn the_registry_has_220_units_resolves_old_codes_and_refuses_unknown_ones() {
    let t = TestSystem::start_with(&[bashu::Target::Admin]).await;
    let mut admin = RegistryServiceClient::connect(t.grpc_endpoint()).await.unwrap();

    let all = admin.list_counties(ListCountiesRequest { within: String::new() }).await.unwrap().into_inner();
    assert_eq!(all.counties.len(), 220);
    let sichuan = admin.list_counties(ListCountiesRequest { within: "51".into() }).await.unwrap().into_inner();
    assert_eq!(sichuan.counties.len(), 183);

    let longchang = admin.get_county(GetCountyRequest { code: "511028".into() }).await.unwrap().into_inner();
    let county = longchang.county.unwrap();
    assert_eq!((county.code.as_str(), county.name.as_str()), ("511083", "隆昌市"));
    assert_eq!(longchang.resolved_from, "511028");

    let unknown = admin.get_county(GetCountyRequest { code: "999999".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(unknown.message().contains("999999 is not a county"), "{}", unknown.message());
    let malformed = admin.get_county(GetCountyRequest { code: "5110".into() }).await.unwrap_err();
    assert_eq!(malformed.code(), tonic::Code::InvalidArgument);

    let alliances = admin.list_alliances(ListAlliancesRequest {}).await.unwrap().into_inner().alliances;
    assert_eq!(alliances.len(), 1);
    assert_eq!(alliances[0].members.len(), 10);
}
