//! CNAPS, China's National Advanced Payment System: HVPS (大额, real-time gross settlement of
//! large values), BEPS (小额, batched small values) and IBPS (超级网银, real-time online
//! banking). One codec, three networks: the system is named in every message.
//!
//! # Wire format
//!
//! ISO 20022-style XML (`Content-Type: application/xml; charset=utf-8`) over HTTP/1.1 `POST`,
//! a faithful subset of the elements, one path per message under `/cnaps-hvps`, `/cnaps-beps`
//! or `/cnaps-ibps`; every message is a `Document` with a `GrpHdr` (`MsgId`, `CreDtTm`):
//!
//! | path | message | call | what we read |
//! |---|---|---|---|
//! | `/pacs.008` | `FIToFICstmrCdtTrf` | credit transfer (a credit to the card) | `GrpHdr/SttlmInf/ClrSys/Prtry` (`HVPS`…), `CdtTrfTxInf/PmtId/EndToEndId`, `IntrBkSttlmAmt` with `Ccy`, `CdtrAcct/Id/Othr/Id` |
//! | `/pacs.003` | `FIToFICstmrDrctDbt` | direct debit (a debit of the card) | the same under `DrctDbtTxInf`, `DbtrAcct/Id/Othr/Id` |
//! | `/pacs.004` | `PmtRtr` | return (the refund) | `TxInf/RtrId`, `TxInf/OrgnlEndToEndId`, `RtrdIntrBkSttlmAmt` |
//! | `/pacs.007` | `FIToFIPmtRvsl` | reversal (冲正) | `TxInf/OrgnlEndToEndId` |
//! | `/pacs.028` | `FIToFIPmtStsReq` | status query | `TxInf/OrgnlEndToEndId` |
//! | `/camt.060` | `AcctRptgReq` | statement request | `RptgReq/RptgPrd/FrToDt/FrDt` (the business date) |
//!
//! Every answer but the statement is a pacs.002 `FIToFIPmtStsRpt`: `OrgnlGrpInfAndSts/
//! OrgnlMsgNmId` names the message answered, `TxInfAndSts` holds `OrgnlEndToEndId` (our
//! reference), `TxSts` — `ACSC` settled, `RJCT` rejected, `PDNG` pending — with the reason in
//! `StsRsnInf/Rsn/Cd` (ISO codes, e.g. `AM04` insufficient funds) or `StsRsnInf/Rsn/Prtry`
//! (`NOTFOUND`: no such transaction; `RVSD`: settled, then reversed) and CNAPS's own reference
//! in `ClrSysRef`. The statement is a camt.053 `BkToCstmrStmt` for one business date: one `Ntry`
//! per booked instruction, `Amt` with `Ccy`, `CdtDbtInd` (`CRDT` money in to the bank, `DBIT`
//! out), `Sts/Cd` (`BOOK`; `INFO` for a rejected one), `RvslInd` for a reversed one,
//! `BookgDt/DtTm` (with milliseconds), `BkTxCd/Prtry/Cd` (`DEBIT`, `CREDIT`, `REFUND`),
//! `NtryRef` (CNAPS's reference) and `NtryDtls/TxDtls/Refs/EndToEndId` (ours).
//!
//! A result notice (posted to `<prefix>/notify` when a movement it did not answer in time
//! settles) is an unsolicited pacs.002 whose `TxInfAndSts` adds `OrgnlTxRef/IntrBkSttlmAmt`
//! (the movement's amount, with `Ccy`); it is acknowledged by an admi.007 `RctAck` with
//! `ReqHdlg/StsCd` `ACPT`.

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{
    CardDirection, CardInstruction, Network, NetworkSpec, Outcome, QueryOutcome, ReconFile,
    ReconLine, ReconPeriod, RefundInstruction, ReversalOutcome,
    notice::Notice,
    recon::{ReconKind, ReconStatus},
    registry::{Calendar, Reach},
    wire::{Call, Codec, Reply, beijing, decimal_money, iso_stamp, required},
    xml::{all, attr, el, text},
};

const NOT_FOUND: &str = "NOTFOUND";
const REVERSED: &str = "RVSD";

/// What the three systems share in the registry: daily statements, the date ending at
/// midnight, declining with ISO 20022's `AM04` (insufficient funds).
const SYSTEM: NetworkSpec = NetworkSpec {
    code: "",
    contract_number: 0,
    display_name: "",
    suspense_account: "",
    reach: Reach::Wire(|network| Box::new(CnapsCodec { network })),
    path_prefix: "",
    calendar: Calendar::MIDNIGHT,
    reference_prefix: "",
    decline_code: "AM04",
    presumed_outcomes: false,
};

pub const HVPS_SPEC: NetworkSpec = NetworkSpec {
    code: "CNAPS_HVPS",
    contract_number: 4,
    display_name: "CNAPS HVPS (大额)",
    suspense_account: "CLEARING_SUSPENSE_CNAPS_HVPS",
    path_prefix: "/cnaps-hvps",
    reference_prefix: "HVPS",
    ..SYSTEM
};

pub const BEPS_SPEC: NetworkSpec = NetworkSpec {
    code: "CNAPS_BEPS",
    contract_number: 5,
    display_name: "CNAPS BEPS (小额)",
    suspense_account: "CLEARING_SUSPENSE_CNAPS_BEPS",
    path_prefix: "/cnaps-beps",
    reference_prefix: "BEPS",
    ..SYSTEM
};

pub const IBPS_SPEC: NetworkSpec = NetworkSpec {
    code: "CNAPS_IBPS",
    contract_number: 6,
    display_name: "CNAPS IBPS (超级网银)",
    suspense_account: "CLEARING_SUSPENSE_CNAPS_IBPS",
    path_prefix: "/cnaps-ibps",
    reference_prefix: "IBPS",
    ..SYSTEM
};

/// The High-Value Payment System (大额).
pub const HVPS: Network = Network::of(&HVPS_SPEC);
/// The Bulk Electronic Payment System (小额).
pub const BEPS: Network = Network::of(&BEPS_SPEC);
/// The Internet Banking Payment System (超级网银).
pub const IBPS: Network = Network::of(&IBPS_SPEC);

/// The messages of one CNAPS system.
#[derive(Debug, Clone, Copy)]
pub struct CnapsCodec {
    network: Network,
}

impl CnapsCodec {
    /// The system as messages name it: `HVPS` of `CNAPS_HVPS`.
    fn system(&self) -> &'static str {
        let code = self.network.as_str();
        code.strip_prefix("CNAPS_").unwrap_or(code)
    }

    fn document(&self, name: &str, root: &str, at_ms: i64, group: &str, body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document \
             xmlns=\"urn:iso:std:iso:20022:tech:xsd:{name}\"><{root}><GrpHdr>{}{}{group}</GrpHdr>\
             {body}</{root}></Document>",
            el("MsgId", &format!("{}{at_ms}", self.system())),
            el("CreDtTm", &iso_stamp(at_ms)),
        )
    }

    fn settlement(&self) -> String {
        format!(
            "{}<SttlmInf>{}<ClrSys>{}</ClrSys></SttlmInf>",
            el("NbOfTxs", "1"),
            el("SttlmMtd", "CLRG"),
            el("Prtry", self.system())
        )
    }

    /// A pacs.008 credit transfer or a pacs.003 direct debit.
    fn movement(&self, i: &CardInstruction, at_ms: i64) -> (&'static str, String) {
        let ids = format!(
            "<PmtId>{}{}</PmtId>{}",
            el("EndToEndId", &i.reference),
            el("TxId", &i.reference),
            amount_el("IntrBkSttlmAmt", &i.amount)
        );
        let group = self.settlement();
        match i.direction {
            CardDirection::CreditCard => {
                let tx = format!(
                    "<CdtTrfTxInf>{ids}{}{}</CdtTrfTxInf>",
                    el("ChrgBr", "SLEV"),
                    account("CdtrAcct", &i.card_token)
                );
                let doc = self.document("pacs.008.001.08", "FIToFICstmrCdtTrf", at_ms, &group, &tx);
                ("/pacs.008", doc)
            }
            CardDirection::DebitCard => {
                let tx = format!(
                    "<DrctDbtTxInf>{ids}{}</DrctDbtTxInf>",
                    account("DbtrAcct", &i.card_token)
                );
                let doc =
                    self.document("pacs.003.001.08", "FIToFICstmrDrctDbt", at_ms, &group, &tx);
                ("/pacs.003", doc)
            }
        }
    }
}

fn amount_el(tag: &str, amount: &crate::money::Money) -> String {
    format!(
        "<{tag} Ccy=\"{}\">{}</{tag}>",
        amount.currency.code(),
        amount.to_decimal_string()
    )
}

fn amount_at(doc: &str, path: &[&str]) -> Result<crate::money::Money, String> {
    let code = required(attr(doc, path, "Ccy"), "Ccy")?;
    decimal_money(&code, &required(text(doc, path), "amount")?)
}

fn account(tag: &str, token: &str) -> String {
    format!("<{tag}><Id><Othr>{}</Othr></Id></{tag}>", el("Id", token))
}

fn original(reference: &str) -> String {
    format!("<TxInf>{}</TxInf>", el("OrgnlEndToEndId", reference))
}

/// `TxSts`, reason (ISO code, proprietary code), text, `ClrSysRef` of an outcome.
fn status_of(outcome: &Outcome) -> (&'static str, String, String, String, String) {
    match outcome {
        Outcome::Succeeded { network_reference }
        | Outcome::PresumedSucceeded { network_reference } => (
            "ACSC",
            String::new(),
            String::new(),
            String::new(),
            network_reference.clone(),
        ),
        Outcome::Failed { code, reason } | Outcome::PresumedFailed { code, reason } => (
            "RJCT",
            code.clone(),
            String::new(),
            reason.clone(),
            String::new(),
        ),
        Outcome::Unknown => (
            "PDNG",
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ),
    }
}

fn status_report(
    reference: &str,
    status: &str,
    code: &str,
    proprietary: &str,
    info: &str,
    clearing_ref: &str,
) -> String {
    let reason = match (code.is_empty(), proprietary.is_empty()) {
        (true, true) => String::new(),
        (false, _) => format!(
            "<StsRsnInf><Rsn>{}</Rsn>{}</StsRsnInf>",
            el("Cd", code),
            el("AddtlInf", info)
        ),
        (true, false) => format!(
            "<StsRsnInf><Rsn>{}</Rsn>{}</StsRsnInf>",
            el("Prtry", proprietary),
            el("AddtlInf", info)
        ),
    };
    format!(
        "<TxInfAndSts>{}{}{reason}{}</TxInfAndSts>",
        el("OrgnlEndToEndId", reference),
        el("TxSts", status),
        el("ClrSysRef", clearing_ref)
    )
}

fn outcome_from(tx: &str) -> Result<Outcome, String> {
    let code = text(tx, &["StsRsnInf", "Rsn", "Cd"]).unwrap_or_default();
    let reason = text(tx, &["StsRsnInf", "AddtlInf"]).unwrap_or_default();
    Ok(match required(text(tx, &["TxSts"]), "TxSts")?.as_str() {
        "ACSC" => Outcome::Succeeded {
            network_reference: text(tx, &["ClrSysRef"]).unwrap_or_default(),
        },
        "RJCT" => Outcome::Failed { code, reason },
        "PDNG" | "ACSP" | "ACTC" => Outcome::Unknown,
        other => return Err(format!("TxSts {other}")),
    })
}

fn kind_code(kind: ReconKind) -> (&'static str, &'static str) {
    match kind {
        ReconKind::Debit => ("DEBIT", "CRDT"),
        ReconKind::Credit => ("CREDIT", "DBIT"),
        ReconKind::Refund => ("REFUND", "DBIT"),
    }
}

fn stamp_ms(at_ms: i64) -> String {
    beijing(at_ms).format(&Rfc3339).unwrap_or_default()
}

fn parse_stamp_ms(text: &str) -> Result<i64, String> {
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| format!("DtTm {text:?}: {e}"))?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| "DtTm out of range".into())
}

fn entry(line: &ReconLine) -> String {
    let (kind, credit_debit) = kind_code(line.kind);
    let status = if line.status == ReconStatus::Failed {
        "INFO"
    } else {
        "BOOK"
    };
    format!(
        "<Ntry>{}{}{}{}<Sts>{}</Sts><BookgDt>{}</BookgDt><BkTxCd><Prtry>{}</Prtry></BkTxCd>\
         <NtryDtls><TxDtls><Refs>{}</Refs></TxDtls></NtryDtls></Ntry>",
        el("NtryRef", &line.network_reference),
        amount_el("Amt", &line.amount),
        el("CdtDbtInd", credit_debit),
        el(
            "RvslInd",
            if line.status == ReconStatus::Reversed {
                "true"
            } else {
                "false"
            }
        ),
        el("Cd", status),
        el("DtTm", &stamp_ms(line.booked_at_ms)),
        el("Cd", kind),
        el("EndToEndId", &line.reference),
    )
}

fn parse_entry(ntry: &str) -> Result<ReconLine, String> {
    let kind = match text(ntry, &["BkTxCd", "Prtry", "Cd"]).as_deref() {
        Some("DEBIT") => ReconKind::Debit,
        Some("CREDIT") => ReconKind::Credit,
        Some("REFUND") => ReconKind::Refund,
        other => return Err(format!("BkTxCd {other:?}")),
    };
    let status = match (
        text(ntry, &["Sts", "Cd"]).as_deref(),
        text(ntry, &["RvslInd"]).as_deref(),
    ) {
        (Some("INFO"), _) => ReconStatus::Failed,
        (Some("BOOK"), Some("true")) => ReconStatus::Reversed,
        (Some("BOOK"), _) => ReconStatus::Succeeded,
        (other, _) => return Err(format!("Sts {other:?}")),
    };
    Ok(ReconLine {
        reference: required(text(ntry, &["Refs", "EndToEndId"]), "EndToEndId")?,
        network_reference: text(ntry, &["NtryRef"]).unwrap_or_default(),
        kind,
        amount: amount_at(ntry, &["Amt"])?,
        status,
        booked_at_ms: parse_stamp_ms(&required(text(ntry, &["BookgDt", "DtTm"]), "DtTm")?)?,
    })
}

impl Codec for CnapsCodec {
    fn network(&self) -> Network {
        self.network
    }

    fn content_type(&self) -> &'static str {
        "application/xml; charset=utf-8"
    }

    fn file_extension(&self) -> &'static str {
        "xml"
    }

    fn encode_call(&self, call: &Call, at_ms: i64) -> Result<(&'static str, String), String> {
        let group = self.settlement();
        Ok(match call {
            Call::Submit(i) => self.movement(i, at_ms),
            Call::Refund(r) => {
                let tx = format!(
                    "<TxInf>{}{}{}</TxInf>",
                    el("RtrId", &r.reference),
                    el("OrgnlEndToEndId", &r.original_reference),
                    amount_el("RtrdIntrBkSttlmAmt", &r.amount)
                );
                let doc = self.document("pacs.004.001.09", "PmtRtr", at_ms, &group, &tx);
                ("/pacs.004", doc)
            }
            Call::Reverse { reference } => {
                let doc = self.document(
                    "pacs.007.001.09",
                    "FIToFIPmtRvsl",
                    at_ms,
                    &group,
                    &original(reference),
                );
                ("/pacs.007", doc)
            }
            Call::Query { reference } => {
                let doc = self.document(
                    "pacs.028.001.03",
                    "FIToFIPmtStsReq",
                    at_ms,
                    &group,
                    &original(reference),
                );
                ("/pacs.028", doc)
            }
            Call::Recon(ReconPeriod::Date(date)) => {
                let request = format!(
                    "<RptgReq>{}<RptgPrd><FrToDt>{}</FrToDt></RptgPrd></RptgReq>",
                    el("ReqdMsgNmId", "camt.053.001.08"),
                    el("FrDt", &date.to_string())
                );
                let doc = self.document("camt.060.001.05", "AcctRptgReq", at_ms, &group, &request);
                ("/camt.060", doc)
            }
            Call::Recon(ReconPeriod::Batch(id)) => {
                return Err(format!("CNAPS statements are daily, not batch {id}"));
            }
        })
    }

    fn decode_call(&self, path: &str, body: &str) -> Result<Call, String> {
        let system = text(body, &["GrpHdr", "SttlmInf", "ClrSys", "Prtry"]).unwrap_or_default();
        if system != self.system() {
            return Err(format!("message for {system:?} sent to {}", self.system()));
        }
        let original = || required(text(body, &["TxInf", "OrgnlEndToEndId"]), "OrgnlEndToEndId");
        Ok(match path {
            "/pacs.008" | "/pacs.003" => {
                let (tx, acct, direction) = if path == "/pacs.008" {
                    ("CdtTrfTxInf", "CdtrAcct", CardDirection::CreditCard)
                } else {
                    ("DrctDbtTxInf", "DbtrAcct", CardDirection::DebitCard)
                };
                Call::Submit(CardInstruction {
                    reference: required(text(body, &[tx, "PmtId", "EndToEndId"]), "EndToEndId")?,
                    direction,
                    card_token: required(text(body, &[tx, acct, "Othr", "Id"]), "account")?,
                    amount: amount_at(body, &[tx, "IntrBkSttlmAmt"])?,
                })
            }
            "/pacs.004" => Call::Refund(RefundInstruction {
                reference: required(text(body, &["TxInf", "RtrId"]), "RtrId")?,
                original_reference: original()?,
                amount: amount_at(body, &["TxInf", "RtrdIntrBkSttlmAmt"])?,
            }),
            "/pacs.007" => Call::Reverse {
                reference: original()?,
            },
            "/pacs.028" => Call::Query {
                reference: original()?,
            },
            "/camt.060" => {
                let date = required(text(body, &["RptgPrd", "FrToDt", "FrDt"]), "FrDt")?;
                let period =
                    ReconPeriod::parse(&date.replace('-', "")).ok_or(format!("FrDt {date:?}"))?;
                Call::Recon(period)
            }
            other => return Err(format!("no CNAPS message at {other}")),
        })
    }

    fn encode_reply(&self, reply: &Reply, at_ms: i64) -> String {
        let (answered, tx) = match reply {
            Reply::Outcome { reference, outcome } => {
                let (status, code, proprietary, info, clearing_ref) = status_of(outcome);
                (
                    "pacs.008.001.08",
                    status_report(reference, status, &code, &proprietary, &info, &clearing_ref),
                )
            }
            Reply::Query { reference, outcome } => {
                let tx = match outcome {
                    QueryOutcome::Found { outcome, reversed } => {
                        let (status, code, _, info, clearing_ref) = status_of(outcome);
                        let proprietary = if *reversed { REVERSED } else { "" };
                        status_report(reference, status, &code, proprietary, &info, &clearing_ref)
                    }
                    QueryOutcome::NotFound | QueryOutcome::Unknown => {
                        status_report(reference, "RJCT", "", NOT_FOUND, "no such transaction", "")
                    }
                };
                ("pacs.028.001.03", tx)
            }
            Reply::Reversal { reference, outcome } => {
                let tx = match outcome {
                    ReversalOutcome::Reversed => status_report(reference, "ACSC", "", "", "", ""),
                    ReversalOutcome::NothingToReverse => {
                        status_report(reference, "RJCT", "", NOT_FOUND, "nothing to reverse", "")
                    }
                    ReversalOutcome::Refused { code, reason } => {
                        status_report(reference, "RJCT", code, "", reason, "")
                    }
                    ReversalOutcome::Unknown => status_report(reference, "PDNG", "", "", "", ""),
                };
                ("pacs.007.001.09", tx)
            }
        };
        let group = format!(
            "<OrgnlGrpInfAndSts>{}{}</OrgnlGrpInfAndSts>{tx}",
            el("OrgnlMsgId", reply.reference()),
            el("OrgnlMsgNmId", answered)
        );
        self.document("pacs.002.001.10", "FIToFIPmtStsRpt", at_ms, "", &group)
    }

    fn decode_reply(&self, call: &Call, body: &str) -> Result<Reply, String> {
        let tx = required(text(body, &["TxInfAndSts"]), "TxInfAndSts")?;
        let reference = required(text(&tx, &["OrgnlEndToEndId"]), "OrgnlEndToEndId")?;
        let proprietary = text(&tx, &["StsRsnInf", "Rsn", "Prtry"]).unwrap_or_default();
        Ok(match call {
            Call::Submit(_) | Call::Refund(_) | Call::Recon(_) => Reply::Outcome {
                reference,
                outcome: outcome_from(&tx)?,
            },
            Call::Query { .. } => Reply::Query {
                reference,
                outcome: if proprietary == NOT_FOUND {
                    QueryOutcome::NotFound
                } else {
                    QueryOutcome::Found {
                        outcome: outcome_from(&tx)?,
                        reversed: proprietary == REVERSED,
                    }
                },
            },
            Call::Reverse { .. } => Reply::Reversal {
                reference,
                outcome: match (outcome_from(&tx)?, proprietary.as_str()) {
                    (Outcome::Succeeded { .. }, _) => ReversalOutcome::Reversed,
                    (_, NOT_FOUND) => ReversalOutcome::NothingToReverse,
                    (Outcome::Failed { code, reason }, _) => {
                        ReversalOutcome::Refused { code, reason }
                    }
                    _ => ReversalOutcome::Unknown,
                },
            },
        })
    }

    fn encode_recon(&self, file: &ReconFile) -> String {
        let period = file.period.as_text();
        let entries: String = file.lines.iter().map(entry).collect();
        let statement = format!(
            "<Stmt>{}{}{entries}</Stmt>",
            el("Id", &format!("{}-{period}", self.system())),
            el("FrDt", &period)
        );
        self.document(
            "camt.053.001.08",
            "BkToCstmrStmt",
            file.lines.last().map_or(0, |l| l.booked_at_ms),
            "",
            &statement,
        )
    }

    fn decode_recon(&self, body: &str) -> Result<ReconFile, String> {
        let id = required(text(body, &["Stmt", "Id"]), "Stmt/Id")?;
        let period_text = id
            .strip_prefix(&format!("{}-", self.system()))
            .ok_or(format!("statement {id:?} is not {}", self.system()))?;
        let period = ReconPeriod::parse(period_text).ok_or(format!("period {period_text:?}"))?;
        let lines = all(body, "Ntry")
            .into_iter()
            .map(parse_entry)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReconFile {
            network: self.network,
            period,
            lines,
        })
    }

    fn encode_notice(&self, notice: &Notice, at_ms: i64) -> Result<String, String> {
        let (status, code, proprietary, info, clearing_ref) = status_of(&notice.outcome);
        let report = status_report(
            &notice.reference,
            status,
            &code,
            &proprietary,
            &info,
            &clearing_ref,
        );
        let tx = format!(
            "{}<OrgnlTxRef>{}</OrgnlTxRef></TxInfAndSts>",
            report.strip_suffix("</TxInfAndSts>").unwrap_or(&report),
            amount_el("IntrBkSttlmAmt", &notice.amount)
        );
        let group = format!(
            "<OrgnlGrpInfAndSts>{}{}</OrgnlGrpInfAndSts>{tx}",
            el("OrgnlMsgId", &notice.reference),
            el("OrgnlMsgNmId", "pacs.008.001.08")
        );
        Ok(self.document("pacs.002.001.10", "FIToFIPmtStsRpt", at_ms, "", &group))
    }

    fn decode_notice(&self, body: &str) -> Result<Notice, String> {
        let tx = required(text(body, &["TxInfAndSts"]), "TxInfAndSts")?;
        Ok(Notice {
            reference: required(text(&tx, &["OrgnlEndToEndId"]), "OrgnlEndToEndId")?,
            outcome: outcome_from(&tx)?,
            amount: amount_at(body, &["TxInfAndSts", "OrgnlTxRef", "IntrBkSttlmAmt"])?,
        })
    }

    fn notice_answer(&self, at_ms: i64) -> String {
        self.document(
            "admi.007.001.01",
            "RctAck",
            at_ms,
            "",
            "<Rpt><ReqHdlg><StsCd>ACPT</StsCd></ReqHdlg></Rpt>",
        )
    }
}
