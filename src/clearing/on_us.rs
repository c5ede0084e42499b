//! On-us (行内): the bound Class I card is held by this bank, so a card movement is a book
//! transfer that the core-banking system settles against the on-us clearing suspense account.
//! It answers at once, in process, and always the same way for the same reference: the ledger
//! itself is the on-us book, so a query finds every reference, a reversal always voids, and the
//! reconciliation file is empty (there is nothing outside our journal to match against).

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    CardInstruction, ClearingClient, ClearingError, Network, NetworkSpec, Outcome, QueryOutcome,
    ReconFile, ReconPeriod, RefundInstruction, ReversalOutcome,
    registry::{Calendar, Reach},
};

/// On-us in the registry: in process, no prefix, nothing to simulate.
pub const SPEC: NetworkSpec = NetworkSpec {
    code: "ON_US",
    contract_number: 1,
    display_name: "on-us (行内)",
    suspense_account: "CLEARING_SUSPENSE_ON_US",
    reach: Reach::InProcess(client),
    path_prefix: "",
    calendar: Calendar::MIDNIGHT,
    reference_prefix: "ONUS",
    decline_code: "DECLINED",
    presumed_outcomes: false,
};

pub const NETWORK: Network = Network::of(&SPEC);

fn client() -> Arc<dyn ClearingClient> {
    Arc::new(OnUsClient)
}

#[derive(Debug, Clone, Default)]
pub struct OnUsClient;

fn booked(reference: &str) -> Outcome {
    Outcome::Succeeded {
        network_reference: format!("{}-{reference}", SPEC.reference_prefix),
    }
}

#[async_trait]
impl ClearingClient for OnUsClient {
    fn network(&self) -> Network {
        NETWORK
    }

    async fn submit(&self, instruction: &CardInstruction) -> Outcome {
        debug_assert!(instruction.amount.minor > 0);
        booked(&instruction.reference)
    }

    async fn query(&self, reference: &str) -> QueryOutcome {
        QueryOutcome::Found {
            outcome: booked(reference),
            reversed: false,
        }
    }

    async fn reverse(&self, _reference: &str) -> ReversalOutcome {
        ReversalOutcome::Reversed
    }

    async fn refund(&self, refund: &RefundInstruction) -> Outcome {
        debug_assert!(refund.amount.minor > 0);
        booked(&refund.reference)
    }

    async fn reconciliation_file(&self, period: &ReconPeriod) -> Result<ReconFile, ClearingError> {
        Ok(ReconFile {
            network: NETWORK,
            period: period.clone(),
            lines: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Currency, Money};

    #[tokio::test]
    async fn on_us_answers_every_operation_at_once_and_the_same_way() {
        let client = OnUsClient;
        let cny = Currency::from_code("CNY").unwrap();
        let instruction = CardInstruction {
            reference: "PG1".into(),
            direction: super::super::CardDirection::DebitCard,
            card_token: "tok".into(),
            amount: Money::new(cny, 100),
        };
        let first = client.submit(&instruction).await;
        assert_eq!(first, client.submit(&instruction).await);
        assert_eq!(
            client.query("PG1").await,
            QueryOutcome::Found {
                outcome: first,
                reversed: false
            }
        );
        assert_eq!(client.reverse("PG1").await, ReversalOutcome::Reversed);
        let file = client
            .reconciliation_file(&ReconPeriod::Batch("B202612070001".into()))
            .await
            .unwrap();
        assert!(file.lines.is_empty());
    }
}
