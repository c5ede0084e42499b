//! The gRPC surface: generated `paygate.v1` types, the front door ([`gate`]), the one status
//! mapping ([`status`]) and thin handlers that convert, call a service, and convert back.

pub mod account;
mod caller_rules;
pub mod cashier;
pub mod closing;
pub mod codec;
pub mod connection;
pub mod credit;
pub mod deadline;
pub mod gate;
mod identity;
pub mod log_throttle;
pub mod operations;
pub mod permits;
pub mod status;
pub mod yields;

/// Generated code of the `paygate.v1` contract.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("paygate.v1");

    /// The contract's descriptor set, imports included, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/paygate_descriptor.bin"));

    /// `google/rpc/error_details.proto`, so reflection clients can decode the `ErrorInfo` detail.
    pub const ERROR_DETAILS_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/error_details_descriptor.bin"));
}
