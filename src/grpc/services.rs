//! Handlers of services whose issue has not landed. Each RPC whose issue has not landed answers UNIMPLEMENTED
//! (the generated default); nothing fakes success.

use crate::grpc::pb::yield_service_server::YieldService;

/// `paygate.v1.YieldService`: balance yield (余额增值).
#[derive(Debug, Clone, Default)]
pub struct YieldApi;

#[tonic::async_trait]
impl YieldService for YieldApi {}
