//! The routing table's tests: matching, issuers, validation.

use super::*;
use crate::clearing::{cnaps, nets_union, wallets};

fn parse(text: &str) -> Result<ClearingConfig, String> {
    toml::from_str::<ClearingConfig>(text).map_err(|e| e.to_string())
}

const TABLE: &str = r#"
    [[routes]]
    method = "QUICK_PAY"
    scenario = "*"
    bank = "ICBC"
    network = "NETS_UNION"
    [[routes]]
    method = "BANK_TRANSFER"
    scenario = "WITHDRAWAL"
    bank = "*"
    network = "CNAPS_HVPS"
    [[routes]]
    method = "*"
    scenario = "*"
    bank = "*"
    network = "ON_US"
    [[networks]]
    network = "NETS_UNION"
    address = "127.0.0.1:7070"
    timeout_ms = 3000
    [[networks]]
    network = "CNAPS_HVPS"
    address = "localhost:7070"
    timeout_ms = 5000
"#;

#[test]
fn the_first_matching_route_names_the_network() {
    let config = parse(TABLE).unwrap();
    let clearing = Clearing::from_config(&config, &Clock::system()).unwrap();
    let route = |m, s, b| Some(clearing.route(m, s, b));
    use PaymentMethod::*;
    use Scenario::*;
    assert_eq!(route(QuickPay, Pay, "ICBC"), Some(nets_union::NETWORK));
    assert_eq!(route(QuickPay, Pay, "ABC"), Some(Network::ON_US));
    assert_eq!(route(BankTransfer, Withdrawal, "ABC"), Some(cnaps::HVPS));
    assert_eq!(route(BankTransfer, TopUp, "ABC"), Some(Network::ON_US));
    let client = clearing.client_for(QuickPay, Refund, "ICBC").unwrap();
    assert_eq!(client.network(), nets_union::NETWORK);
    assert!(clearing.client(wallets::ALIPAY).is_none());
}

#[test]
fn the_longest_bin_prefix_names_the_issuer() {
    let text = format!(
        "{TABLE}\n[[issuers]]\nbin_prefix = \"62\"\nbank = \"UNIONPAY\"\n[[issuers]]\nbin_prefix = \"622202\"\nbank = \"ICBC\"\n"
    );
    let clearing = Clearing::from_config(&parse(&text).unwrap(), &Clock::system()).unwrap();
    assert_eq!(clearing.bank_of("622202"), "ICBC");
    assert_eq!(clearing.bank_of("621700"), "UNIONPAY");
    assert_eq!(clearing.bank_of("411111"), "");
    let bad = text.replace("bin_prefix = \"62\"", "bin_prefix = \"6x\"");
    assert!(
        parse(&bad)
            .unwrap()
            .validate()
            .unwrap_err()
            .contains("bin_prefix")
    );
}

#[test]
fn the_first_query_waits_longer_than_any_network_timeout() {
    let text = format!("{TABLE}\n[recovery]\nfirst_query_after_ms = 3000\n");
    let error = parse(&text).unwrap().validate().unwrap_err();
    assert!(error.contains("first_query_after_ms"), "{error}");
}

#[test]
fn an_unknown_network_is_a_configuration_error() {
    let text = TABLE.replace("CNAPS_HVPS", "SWIFT");
    let error = parse(&text).unwrap_err();
    assert!(error.contains("SWIFT"), "{error}");
}

#[test]
fn a_route_to_a_network_without_an_endpoint_is_refused() {
    let mut config = parse(TABLE).unwrap();
    config.networks.remove(1);
    let error = config.validate().unwrap_err();
    assert!(error.contains("CNAPS_HVPS"), "{error}");
}

#[test]
fn malformed_tables_are_refused() {
    let base = parse(TABLE).unwrap();
    let mut unreachable = base.clone();
    unreachable.routes.swap(0, 2);
    assert!(unreachable.validate().unwrap_err().contains("never used"));
    let mut twice = base.clone();
    twice.networks.push(twice.networks[0].clone());
    assert!(twice.validate().unwrap_err().contains("twice"));
    let mut no_port = base.clone();
    no_port.networks[0].address = "localhost".into();
    assert!(no_port.validate().is_err());
    let mut no_timeout = base.clone();
    no_timeout.networks[0].timeout_ms = 0;
    assert!(no_timeout.validate().is_err());
    let mut bad_bank = base;
    bad_bank.routes[0].bank = "IC BC".into();
    assert!(bad_bank.validate().is_err());
    ClearingConfig::default().validate().unwrap();
}
