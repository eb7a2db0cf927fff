//! `meterkit invoice …`: a bill's payment lifecycle through the engine's invoice store
//! ([`Engine::issue_invoice`], [`Engine::update_invoice`], [`Engine::invoices`],
//! [`Engine::mark_overdue`], [`Engine::reminders_due`]). Every subcommand prints JSON.

use std::io::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use meterkit::{invoice::Invoice, Bill, Engine, Error, ErrorKind, Result};
use serde::Serialize;

use crate::input::parse_timestamp;
use crate::io_err;

/// `meterkit invoice` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum InvoiceCommand {
    /// Print a draft invoice (JSON) for a bill (the JSON of `meterkit bill --output json`);
    /// nothing is stored until `invoice issue`.
    Create {
        /// The bill file (JSON).
        #[arg(long)]
        bill: PathBuf,
        /// The invoice number, unique per tenant.
        #[arg(long)]
        id: String,
        /// Days from issue to due date.
        #[arg(long, default_value_t = 14)]
        terms: u32,
    },
    /// Issue a draft invoice (the JSON of `invoice create`) and store it.
    Issue {
        /// The draft invoice file (JSON).
        file: PathBuf,
        /// The issue instant (RFC 3339; default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Record payment of a stored invoice.
    Pay(ChangeArgs),
    /// Void a stored invoice.
    Void(ChangeArgs),
    /// The stored invoices of the tenant, by id.
    List,
    /// Mark every issued invoice past its due date overdue; prints those that changed.
    Overdue {
        /// The instant compared with due dates (RFC 3339; default: now).
        #[arg(long)]
        now: Option<String>,
    },
    /// The issued invoices whose payment reminder is due.
    Reminders {
        /// The instant (RFC 3339; default: now).
        #[arg(long)]
        now: Option<String>,
        /// Remind this many days before the due date.
        #[arg(long, default_value_t = 3)]
        days_before: u32,
    },
}

/// Flags of `invoice pay` and `invoice void`.
#[derive(Debug, clap::Args)]
pub struct ChangeArgs {
    /// The invoice number.
    #[arg(long)]
    id: String,
    /// The instant (RFC 3339; default: now).
    #[arg(long)]
    at: Option<String>,
}

fn instant(flag: &str, v: Option<&String>) -> Result<DateTime<Utc>> {
    v.map_or_else(|| Ok(Utc::now()), |t| parse_timestamp(t, None).map_err(|e| e.with_field(flag.to_string())))
}

fn print(value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_string_pretty(value)
        .map_err(|e| Error::new(ErrorKind::Store, format!("Cannot write JSON: {e}.")))?;
    writeln!(std::io::stdout().lock(), "{json}").map_err(io_err)
}

/// Read a JSON file into `T`; errors name the file, its line and the `field` flag.
fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf, field: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(ErrorKind::Parse, format!("Cannot read {}: {e}.", path.display())).with_field(field.to_string())
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::new(ErrorKind::Parse, format!("{}:{}: {e}", path.display(), e.line()))
            .with_line(e.line() as u64)
            .with_field(field.to_string())
    })
}

/// Run one `meterkit invoice` subcommand.
pub fn run(engine: &Engine, tenant: &str, cmd: &InvoiceCommand) -> Result<()> {
    match cmd {
        InvoiceCommand::Create { bill, id, terms } => {
            let bill: Bill = read_json(bill, "bill")?;
            print(&Invoice::new(id, bill, *terms))
        }
        InvoiceCommand::Issue { file, at } => {
            let mut invoice: Invoice = read_json(file, "file")?;
            if invoice.bill.tenant != tenant {
                return Err(Error::new(
                    ErrorKind::InvalidQuery,
                    format!(
                        "{}: the bill's tenant '{}' is not --tenant '{tenant}'.",
                        file.display(),
                        invoice.bill.tenant
                    ),
                )
                .with_field("tenant"));
            }
            engine.issue_invoice(&mut invoice, instant("at", at.as_ref())?)?;
            print(&invoice)
        }
        InvoiceCommand::Pay(a) => {
            let at = instant("at", a.at.as_ref())?;
            print(&engine.update_invoice(tenant, &a.id, |i| i.pay(at))?)
        }
        InvoiceCommand::Void(a) => {
            let at = instant("at", a.at.as_ref())?;
            print(&engine.update_invoice(tenant, &a.id, |i| i.void(at))?)
        }
        InvoiceCommand::List => print(&engine.invoices(tenant)?),
        InvoiceCommand::Overdue { now } => print(&engine.mark_overdue(tenant, instant("now", now.as_ref())?)?),
        InvoiceCommand::Reminders { now, days_before } => {
            print(&engine.reminders_due(tenant, instant("now", now.as_ref())?, *days_before)?)
        }
    }
}
