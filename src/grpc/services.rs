//! Handlers of the three services. Each RPC whose issue has not landed answers UNIMPLEMENTED
//! (the generated default); nothing fakes success.

use crate::grpc::pb::{cashier_service_server::CashierService, yield_service_server::YieldService};

/// `paygate.v1.CashierService`: the quick checkout (快捷收银台).
#[derive(Debug, Clone, Default)]
pub struct CashierApi;

#[tonic::async_trait]
impl CashierService for CashierApi {}

/// `paygate.v1.YieldService`: balance yield (余额增值).
#[derive(Debug, Clone, Default)]
pub struct YieldApi;

#[tonic::async_trait]
impl YieldService for YieldApi {}
