//! On-us (行内): the bound Class I card is held by this bank, so a card movement is a book
//! transfer that the core-banking system settles against the on-us clearing suspense account.
//! It answers at once and always the same way for the same reference.

use async_trait::async_trait;

use super::{CardInstruction, ClearingClient, ClearingOutcome, Network};

#[derive(Debug, Clone, Default)]
pub struct OnUsClient;

#[async_trait]
impl ClearingClient for OnUsClient {
    fn network(&self) -> Network {
        Network::OnUs
    }

    async fn submit(&self, instruction: &CardInstruction) -> ClearingOutcome {
        debug_assert!(instruction.amount.minor > 0);
        ClearingOutcome::Succeeded {
            network_reference: format!("ONUS-{}", instruction.reference),
        }
    }
}
