//! Clearing-network clients behind one trait. Each network is one implementation; wire types
//! stay inside its module. A call may time out: an unknown outcome keeps the funds reserved and
//! the movement PROCESSING until a query or reversal settles it.

pub mod on_us;

use async_trait::async_trait;
use tracing::Instrument;

use crate::money::Money;

/// The networks paygate can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// On-us (行内): a book transfer inside our own bank.
    OnUs,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::OnUs => "ON_US",
        }
    }
}

/// Which way money moves between the bank and the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardDirection {
    /// Pull from the card into the bank (top-up).
    DebitCard,
    /// Push from the bank to the card (withdrawal).
    CreditCard,
}

/// One instruction to a network: move `amount` to or from the card named by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInstruction {
    /// Our reference: the same reference is the same instruction (networks de-duplicate on it).
    pub reference: String,
    pub direction: CardDirection,
    pub card_token: String,
    pub amount: Money,
}

/// A network's answer. NetsUnion's four outcomes fold into these: presumed success counts as
/// success, presumed failure as failure, and no answer at all is `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClearingOutcome {
    Succeeded { network_reference: String },
    Failed { reason: String },
    Unknown,
}

/// A clearing-network client.
#[async_trait]
pub trait ClearingClient: Send + Sync {
    fn network(&self) -> Network;

    /// Submits an instruction; resubmitting the same reference returns the first outcome.
    async fn submit(&self, instruction: &CardInstruction) -> ClearingOutcome;
}

/// Submits through `client` inside a `clearing.submit` span: a child of the call's span, so the
/// call's trace (and its W3C `traceparent`, with OpenTelemetry on) follows the money to the
/// network. A network client on the wire injects that context into its own request.
pub async fn submit(client: &dyn ClearingClient, instruction: &CardInstruction) -> ClearingOutcome {
    let span = tracing::info_span!(
        "clearing.submit",
        network = client.network().as_str(),
        reference = %instruction.reference
    );
    client.submit(instruction).instrument(span).await
}
