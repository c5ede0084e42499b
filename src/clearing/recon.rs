//! Reconciliation files (对账): what a network says it booked in one batch or business date.
//!
//! One text format for every simulated network (UTF-8, one record a line, fields split by `|`,
//! no field may contain `|` or a line break):
//!
//! ```text
//! H|NETS_UNION|B202612070010|2                 header: network, period, detail count
//! D|PG…|NU…|DEBIT|CNY|100.00|SUCCEEDED|1796607000000
//! D|PG…|NU…|REFUND|CNY|20.00|REVERSED|1796607001000
//! T|2                                          trailer: detail count again
//! ```
//!
//! A detail is: our reference, the network's reference, the kind (`DEBIT`, `CREDIT`, `REFUND`),
//! currency, amount (plain decimal), status (`SUCCEEDED`, `FAILED`, `REVERSED`) and when it was
//! booked (Unix milliseconds). Periods: the hourly batch `B` + `yyyymmdd` + a 4-digit sequence
//! (`0001` is 00:00–01:00 Beijing time, … `0024` is 23:00–24:00) of a network that reconciles
//! hourly (NetsUnion); every network's business date `yyyymmdd` (Beijing time, ending at the
//! hour of its calendar: UnionPay QR's date rolls at its 23:00 cutover).

use time::{Date, macros::format_description};

use super::{Network, wire::beijing};
use crate::money::{Currency, Money, Sign};

/// Most detail lines one file may hold.
pub const RECON_LINES_MAX: usize = 200_000;

/// Which file: one NetsUnion batch, or one business date of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconPeriod {
    /// A NetsUnion batch id: `B` + `yyyymmdd` + 4 digits.
    Batch(String),
    /// A business date.
    Date(Date),
}

impl ReconPeriod {
    /// The period as files and wire messages spell it: the batch id, or `yyyymmdd`.
    pub fn as_text(&self) -> String {
        match self {
            ReconPeriod::Batch(id) => id.clone(),
            ReconPeriod::Date(date) => date_text(*date),
        }
    }

    /// The instants (Unix ms, `[from, to)`) a record of this period can have been sent in: its
    /// Beijing calendar day, widened by the hour before (UnionPay QR's date starts at 23:00 the
    /// day before) and by `margin_ms` on both sides.
    pub fn window_ms(&self, margin_ms: i64) -> (i64, i64) {
        let date = match self {
            ReconPeriod::Batch(id) => id.get(1..9).and_then(parse_date),
            ReconPeriod::Date(date) => Some(*date),
        };
        let Some(date) = date else {
            return (0, 0);
        };
        let midnight_ms = |d: Date| {
            d.midnight()
                .assume_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC))
                .unix_timestamp()
                .saturating_mul(1_000)
        };
        let next = date.next_day().unwrap_or(date);
        (
            midnight_ms(date) - 3_600_000 - margin_ms,
            midnight_ms(next) + margin_ms,
        )
    }

    /// The instant (Unix ms) the period ends for `network`: its batch's hour, or its date.
    pub fn ends_at_ms(&self, network: Network) -> i64 {
        match self {
            ReconPeriod::Date(date) => date_ends_at_ms(network, *date),
            ReconPeriod::Batch(id) => {
                let date = id.get(1..9).and_then(parse_date);
                let hour = id.get(9..).and_then(|h| h.parse::<i64>().ok());
                match (date, hour) {
                    (Some(date), Some(hour)) => midnight_after_ms(date)
                        .saturating_sub((24 - hour).saturating_mul(3_600_000)),
                    _ => 0,
                }
            }
        }
    }

    /// The period before this one: the previous batch, or the previous date.
    pub fn previous(&self) -> Option<ReconPeriod> {
        match self {
            ReconPeriod::Date(date) => date.previous_day().map(ReconPeriod::Date),
            ReconPeriod::Batch(id) => {
                let date = id.get(1..9).and_then(parse_date)?;
                let hour = id.get(9..)?.parse::<u32>().ok()?;
                if hour > 1 {
                    Some(ReconPeriod::Batch(format!(
                        "B{}{:04}",
                        date_text(date),
                        hour - 1
                    )))
                } else {
                    let before = date.previous_day()?;
                    Some(ReconPeriod::Batch(format!("B{}0024", date_text(before))))
                }
            }
        }
    }

    /// Parses [`ReconPeriod::as_text`]: `B` + 12 digits, or 8 digits.
    pub fn parse(text: &str) -> Option<ReconPeriod> {
        if let Some(digits) = text.strip_prefix('B') {
            let valid = digits.len() == 12
                && digits.bytes().all(|b| b.is_ascii_digit())
                && parse_date(&digits[..8]).is_some()
                && (1..=24).contains(&digits[8..].parse::<u32>().unwrap_or(0));
            return valid.then(|| ReconPeriod::Batch(text.to_owned()));
        }
        parse_date(text).map(ReconPeriod::Date)
    }
}

fn date_text(date: Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn parse_date(text: &str) -> Option<Date> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Date::parse(text, format_description!("[year][month][day]")).ok()
}

/// NetsUnion's hourly batch of an instant: `B` + Beijing date + `0001`…`0024`.
pub fn batch_id(at_ms: i64) -> String {
    let at = beijing(at_ms);
    format!("B{}{:04}", date_text(at.date()), u32::from(at.hour()) + 1)
}

/// The business date `network` books an instant under: the Beijing date, or the next one
/// from the hour its date ends (UnionPay QR's 23:00 cutover).
pub fn business_date(network: Network, at_ms: i64) -> Date {
    let at = beijing(at_ms);
    if at.hour() >= network.spec().calendar.date_ends_at_hour {
        return at.date().next_day().unwrap_or(at.date());
    }
    at.date()
}

/// The instant (Unix ms) `network`'s business date `date` ends: at the hour its calendar names
/// (midnight Beijing time; UnionPay QR's 23:00 cutover the same evening). The inverse of
/// [`business_date`]: an instant just before it books under `date`, the instant itself under
/// the next date.
pub fn date_ends_at_ms(network: Network, date: Date) -> i64 {
    let early = 24 - i64::from(network.spec().calendar.date_ends_at_hour.min(24));
    midnight_after_ms(date).saturating_sub(early * 3_600_000)
}

/// Midnight (Unix ms, Beijing time) at the end of `date`.
fn midnight_after_ms(date: Date) -> i64 {
    let beijing = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
    let midnight = date
        .next_day()
        .unwrap_or(date)
        .midnight()
        .assume_offset(beijing);
    i64::try_from(midnight.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Whether an instant booked by `network` belongs to `period`.
pub fn in_period(network: Network, period: &ReconPeriod, at_ms: i64) -> bool {
    match period {
        ReconPeriod::Batch(id) => network.hourly_batches() && batch_id(at_ms) == *id,
        ReconPeriod::Date(date) => business_date(network, at_ms) == *date,
    }
}

/// What a detail line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReconKind {
    Debit,
    Credit,
    Refund,
}

/// Where a booked instruction stands at the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReconStatus {
    Succeeded,
    Failed,
    Reversed,
}

impl ReconKind {
    fn as_str(self) -> &'static str {
        match self {
            ReconKind::Debit => "DEBIT",
            ReconKind::Credit => "CREDIT",
            ReconKind::Refund => "REFUND",
        }
    }
    fn parse(text: &str) -> Option<ReconKind> {
        [ReconKind::Debit, ReconKind::Credit, ReconKind::Refund]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

impl ReconStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReconStatus::Succeeded => "SUCCEEDED",
            ReconStatus::Failed => "FAILED",
            ReconStatus::Reversed => "REVERSED",
        }
    }
    fn parse(text: &str) -> Option<ReconStatus> {
        [
            ReconStatus::Succeeded,
            ReconStatus::Failed,
            ReconStatus::Reversed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One booked instruction in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconLine {
    pub reference: String,
    pub network_reference: String,
    pub kind: ReconKind,
    pub amount: Money,
    pub status: ReconStatus,
    pub booked_at_ms: i64,
}

/// A network's reconciliation file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconFile {
    pub network: Network,
    pub period: ReconPeriod,
    pub lines: Vec<ReconLine>,
}

impl ReconFile {
    /// The file in the format of the module doc.
    pub fn render(&self) -> String {
        debug_assert!(self.lines.len() <= RECON_LINES_MAX);
        let mut text = format!(
            "H|{}|{}|{}\n",
            self.network.as_str(),
            self.period.as_text(),
            self.lines.len()
        );
        for l in &self.lines {
            text.push_str(&format!(
                "D|{}|{}|{}|{}|{}|{}|{}\n",
                l.reference,
                l.network_reference,
                l.kind.as_str(),
                l.amount.currency.code(),
                l.amount.to_decimal_string(),
                l.status.as_str(),
                l.booked_at_ms
            ));
        }
        text.push_str(&format!("T|{}\n", self.lines.len()));
        text
    }

    /// Parses [`ReconFile::render`]; the header and trailer counts must match the details.
    pub fn parse(text: &str) -> Result<ReconFile, String> {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split('|').collect();
        let (network, period, count) = match header.as_slice() {
            ["H", network, period, count] => (
                Network::parse(network).ok_or(format!("unknown network {network}"))?,
                ReconPeriod::parse(period).ok_or(format!("malformed period {period}"))?,
                count.parse::<usize>().map_err(|_| "malformed count")?,
            ),
            _ => return Err("missing header".into()),
        };
        if count > RECON_LINES_MAX {
            return Err(format!("{count} lines is over {RECON_LINES_MAX}"));
        }
        let mut details = Vec::with_capacity(count);
        for line in lines {
            let fields: Vec<&str> = line.split('|').collect();
            match fields.as_slice() {
                [
                    "D",
                    reference,
                    network_reference,
                    kind,
                    currency,
                    amount,
                    status,
                    at,
                ] => {
                    let currency = Currency::from_code(currency).map_err(|e| e.to_string())?;
                    details.push(ReconLine {
                        reference: (*reference).to_owned(),
                        network_reference: (*network_reference).to_owned(),
                        kind: ReconKind::parse(kind).ok_or(format!("kind {kind}"))?,
                        amount: Money::parse(currency, amount, Sign::Positive)
                            .map_err(|e| e.to_string())?,
                        status: ReconStatus::parse(status).ok_or(format!("status {status}"))?,
                        booked_at_ms: at.parse().map_err(|_| format!("time {at}"))?,
                    });
                }
                ["T", trailer] if trailer.parse::<usize>() == Ok(details.len()) => {
                    if details.len() != count {
                        return Err(format!("header says {count}, {} details", details.len()));
                    }
                    return Ok(ReconFile {
                        network,
                        period,
                        lines: details,
                    });
                }
                _ => return Err(format!("malformed line {line:?}")),
            }
            if details.len() > count {
                return Err("more details than the header says".into());
            }
        }
        Err("missing or wrong trailer".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clearing::{cnaps, nets_union, union_pay_qr, wallets};

    #[test]
    fn a_netsunion_batch_is_the_beijing_hour() {
        // 2026-12-07T09:30:00+08:00
        let at_ms = 1_796_607_000_000;
        assert_eq!(batch_id(at_ms), "B202612070010");
        assert_eq!(
            ReconPeriod::parse("B202612070010"),
            Some(ReconPeriod::Batch("B202612070010".into()))
        );
        assert_eq!(ReconPeriod::parse("B202612070025"), None);
        assert_eq!(ReconPeriod::parse("B2026120700"), None);
        let date = ReconPeriod::parse("20261207").unwrap();
        assert!(in_period(cnaps::HVPS, &date, at_ms));
    }

    #[test]
    fn a_date_ends_where_the_next_one_begins_on_every_network() {
        let date = Date::from_calendar_date(2026, time::Month::December, 7).expect("date");
        for network in Network::all() {
            let end_ms = date_ends_at_ms(network, date);
            assert_eq!(business_date(network, end_ms - 1), date, "{network:?}");
            assert_eq!(
                business_date(network, end_ms),
                date.next_day().expect("next")
            );
        }
        let batch = ReconPeriod::parse("B202612070024").expect("batch");
        assert_eq!(batch.ends_at_ms(nets_union::NETWORK), 1_796_659_200_000);
        assert_eq!(
            batch.previous().map(|p| p.as_text()),
            Some("B202612070023".to_owned())
        );
        assert_eq!(
            ReconPeriod::parse("B202612070001")
                .and_then(|p| p.previous())
                .map(|p| p.as_text()),
            Some("B202612060024".to_owned())
        );
        // 2026-12-07 23:00 and 24:00 Beijing time.
        assert_eq!(
            date_ends_at_ms(union_pay_qr::NETWORK, date),
            1_796_655_600_000
        );
        assert_eq!(
            date_ends_at_ms(nets_union::NETWORK, date),
            1_796_659_200_000
        );
    }

    #[test]
    fn union_pay_qr_books_after_its_23_00_cutover_under_the_next_date() {
        // 2026-12-07T23:30:00+08:00
        let at_ms = 1_796_607_000_000 + 14 * 3_600_000;
        assert_eq!(
            date_text(business_date(union_pay_qr::NETWORK, at_ms)),
            "20261208"
        );
        assert_eq!(date_text(business_date(wallets::ALIPAY, at_ms)), "20261207");
    }

    #[test]
    fn a_file_parses_back_to_what_was_rendered_and_a_short_one_is_refused() {
        let cny = Currency::from_code("CNY").unwrap();
        let file = ReconFile {
            network: nets_union::NETWORK,
            period: ReconPeriod::Batch("B202612070010".into()),
            lines: vec![ReconLine {
                reference: "PG1".into(),
                network_reference: "NU1".into(),
                kind: ReconKind::Refund,
                amount: Money::new(cny, 2_000),
                status: ReconStatus::Reversed,
                booked_at_ms: 5,
            }],
        };
        let text = file.render();
        assert_eq!(ReconFile::parse(&text), Ok(file));
        let cut = text.replace("T|1\n", "");
        assert!(ReconFile::parse(&cut).is_err());
    }
}
