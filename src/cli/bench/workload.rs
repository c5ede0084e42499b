//! The workloads: their names, the RPC each one drives, what it needs seeded and the baseline
//! each is compared with.

use serde::Serialize;

/// One workload of `paygate bench`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// The floor: `grpc.health.v1.Health/Check` on a bare tonic server with the same TLS.
    Echo,
    /// paygate's own `Health/Check`: the in-run baseline of every paygate workload.
    Health,
    /// `AccountService/GetBalance` of a random seeded account.
    GetBalance,
    /// `AccountService/Transfer` of 0.01 between two random seeded accounts.
    Transfer,
    /// `AccountService/Transfer` of 0.01 from a random account, every credit to one account.
    TransferHot,
    /// `CashierService/Pay` by balance of a pre-created order, orders of every merchant.
    Pay,
    /// `CashierService/Pay` by balance, every order of one merchant (one hot settlement account).
    PayHot,
    /// `CashierService/ScanPay` of a pre-issued payment code (付款码): create and pay in one call.
    ScanPay,
}

impl Workload {
    /// Every workload, in the order they run.
    pub const ALL: [Workload; 8] = [
        Workload::Echo,
        Workload::Health,
        Workload::GetBalance,
        Workload::Transfer,
        Workload::TransferHot,
        Workload::Pay,
        Workload::PayHot,
        Workload::ScanPay,
    ];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Echo => "echo",
            Workload::Health => "health",
            Workload::GetBalance => "get-balance",
            Workload::Transfer => "transfer",
            Workload::TransferHot => "transfer-hot",
            Workload::Pay => "pay",
            Workload::PayHot => "pay-hot",
            Workload::ScanPay => "scan-pay",
        }
    }

    /// The gRPC method each call of the measured window is.
    pub fn rpc(self) -> &'static str {
        match self {
            Workload::Echo | Workload::Health => "grpc.health.v1.Health/Check",
            Workload::GetBalance => "paygate.v1.AccountService/GetBalance",
            Workload::Transfer | Workload::TransferHot => "paygate.v1.AccountService/Transfer",
            Workload::Pay | Workload::PayHot => "paygate.v1.CashierService/Pay",
            Workload::ScanPay => "paygate.v1.CashierService/ScanPay",
        }
    }

    /// The workload of the same run this one is compared with: paygate's Health/Check for
    /// paygate's calls, the bare echo server for Health/Check, none for the echo itself.
    pub fn baseline(self) -> Option<Workload> {
        match self {
            Workload::Echo => None,
            Workload::Health => Some(Workload::Echo),
            Workload::GetBalance
            | Workload::Transfer
            | Workload::TransferHot
            | Workload::Pay
            | Workload::PayHot
            | Workload::ScanPay => Some(Workload::Health),
        }
    }

    /// Whether it runs against the bare echo server (and its CPU is that process's).
    pub fn on_echo_server(self) -> bool {
        self == Workload::Echo
    }

    /// Whether it needs funded accounts.
    pub fn needs_accounts(self) -> bool {
        !matches!(self, Workload::Echo | Workload::Health)
    }

    /// Whether it needs registered merchants.
    pub fn needs_merchants(self) -> bool {
        matches!(self, Workload::Pay | Workload::PayHot | Workload::ScanPay)
    }

    /// Whether each call consumes one pre-seeded item (an unpaid order, a payment code): the
    /// window ends early when they run out.
    pub fn consumes_pool(self) -> bool {
        self.needs_merchants()
    }

    /// Whether each call posts money (a rate hint for sizing the next pool).
    pub fn posts(self) -> bool {
        matches!(
            self,
            Workload::Transfer
                | Workload::TransferHot
                | Workload::Pay
                | Workload::PayHot
                | Workload::ScanPay
        )
    }
}

/// The workloads asked for, each once, in running order; none asked: all of them.
pub fn plan(asked: &[Workload]) -> Vec<Workload> {
    if asked.is_empty() {
        return Workload::ALL.to_vec();
    }
    let mut plan = asked.to_vec();
    plan.sort();
    plan.dedup();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_run_once_each_in_their_fixed_order() {
        let asked = [
            Workload::Pay,
            Workload::Health,
            Workload::Pay,
            Workload::Echo,
        ];
        assert_eq!(
            plan(&asked),
            [Workload::Echo, Workload::Health, Workload::Pay]
        );
        assert_eq!(plan(&[]), Workload::ALL);
    }

    #[test]
    fn paygate_calls_compare_with_health_and_health_with_the_echo() {
        assert_eq!(Workload::Pay.baseline(), Some(Workload::Health));
        assert_eq!(Workload::Health.baseline(), Some(Workload::Echo));
        assert_eq!(Workload::Echo.baseline(), None);
        for w in Workload::ALL {
            use clap::ValueEnum;
            let value = w.to_possible_value().map(|v| v.get_name().to_owned());
            assert_eq!(value.as_deref(), Some(w.name()), "{w:?}");
        }
    }
}
