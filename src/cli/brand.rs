//! `amcctl brand`: the brands carried by instances.

use clap::Subcommand;
use serde::Serialize;

use super::Ctx;
use crate::domain::{Action, AuditNote, Instance, User, parse_brands};
use crate::error::Result;
use crate::output::{Format, Tabular, csv_cells, csv_header};

/// Brand commands.
#[derive(Debug, Subcommand)]
pub enum BrandCmd {
    /// An instance's brands, or every brand with the instances that carry it
    List {
        /// UUID, AMC instance ID or exact name
        instance: Option<String>,
        /// Every user's instances (without INSTANCE)
        #[arg(long)]
        all_users: bool,
    },
    /// Replace an instance's brands (one transaction)
    Set {
        /// UUID, AMC instance ID or exact name
        instance: String,
        /// The new brands
        #[arg(required = true)]
        brands: Vec<String>,
    },
    /// Add brands to an instance
    Add {
        /// UUID, AMC instance ID or exact name
        instance: String,
        /// Brands to add
        #[arg(required = true)]
        brands: Vec<String>,
    },
    /// Remove brands from an instance
    Remove {
        /// UUID, AMC instance ID or exact name
        instance: String,
        /// Brands to remove
        #[arg(required = true)]
        brands: Vec<String>,
    },
    /// Remove every brand of an instance
    Clear {
        /// UUID, AMC instance ID or exact name
        instance: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
}

/// One line of `brand list` without an instance.
#[derive(Debug, Serialize)]
struct BrandEntry {
    brand: String,
    instances: Vec<String>,
}

impl Tabular for BrandEntry {
    fn columns() -> Vec<&'static str> {
        vec!["BRAND", "INSTANCES"]
    }
    fn row(&self) -> Vec<comfy_table::Cell> {
        vec![
            comfy_table::Cell::new(&self.brand),
            comfy_table::Cell::new(self.instances.join(", ")),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<BrandEntryCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&BrandEntryCsv {
            brand: &self.brand,
            instances: self.instances.join(";"),
        })
    }
}

/// The CSV record of a brand: its instances in one cell, `;` between them.
#[derive(Default, Serialize)]
struct BrandEntryCsv<'a> {
    brand: &'a str,
    instances: String,
}

/// A brand of one instance, for the table and CSV of `brand list INSTANCE`.
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Brand(String);

impl Tabular for Brand {
    fn columns() -> Vec<&'static str> {
        vec!["BRAND"]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<BrandCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&BrandCsv { brand: &self.0 })
    }
    fn row(&self) -> Vec<comfy_table::Cell> {
        vec![comfy_table::Cell::new(&self.0)]
    }
}

/// The CSV record of one brand of an instance: a column named for what
/// the JSON gives as a bare string.
#[derive(Default, Serialize)]
struct BrandCsv<'a> {
    brand: &'a str,
}

pub(super) fn run(ctx: &mut Ctx, cmd: BrandCmd) -> Result<()> {
    match cmd {
        BrandCmd::List {
            instance: Some(r),
            all_users: _,
        } => {
            let (_, inst) = ctx.instance_for(Some(&r), Action::Show, "brand list")?;
            print_brands(ctx, inst.brands)
        }
        BrandCmd::List {
            instance: None,
            all_users,
        } => {
            let user = ctx.user()?;
            let index = ctx.store()?.brand_index((!all_users).then_some(user.id))?;
            let entries: Vec<BrandEntry> = index
                .into_iter()
                .map(|(brand, instances)| BrandEntry { brand, instances })
                .collect();
            ctx.out.list(&entries)
        }
        BrandCmd::Set { instance, brands } => {
            let brands = parse_brands(&brands)?;
            let (user, inst) = ctx.instance_for(Some(&instance), Action::Brands, "brand set")?;
            if same_brands(&inst.brands, &brands) {
                return unchanged(ctx, inst.brands);
            }
            let note = brands_note(&user, "brand set", &inst, &brands);
            let inst = ctx.store()?.audited(note).set_brands(inst.id, &brands)?;
            changed_brands(ctx, inst.brands)
        }
        BrandCmd::Add { instance, brands } => {
            let brands = parse_brands(&brands)?;
            let (user, inst) = ctx.instance_for(Some(&instance), Action::Brands, "brand add")?;
            let mut after = inst.brands.clone();
            after.extend(brands.iter().filter(|b| !inst.brands.contains(b)).cloned());
            if same_brands(&inst.brands, &after) {
                return unchanged(ctx, inst.brands);
            }
            let note = brands_note(&user, "brand add", &inst, &after);
            let inst = ctx.store()?.audited(note).add_brands(inst.id, &brands)?;
            changed_brands(ctx, inst.brands)
        }
        BrandCmd::Remove { instance, brands } => {
            let brands = parse_brands(&brands)?;
            let (user, inst) = ctx.instance_for(Some(&instance), Action::Brands, "brand remove")?;
            let after: Vec<String> = inst
                .brands
                .iter()
                .filter(|b| !brands.contains(b))
                .cloned()
                .collect();
            let note = brands_note(&user, "brand remove", &inst, &after);
            let inst = ctx.store()?.audited(note).remove_brands(inst.id, &brands)?;
            changed_brands(ctx, inst.brands)
        }
        BrandCmd::Clear { instance, yes } => {
            let (user, inst) = ctx.instance_for(Some(&instance), Action::Brands, "brand clear")?;
            let q = format!(
                "Remove all {} brand(s) of {}?",
                inst.brands.len(),
                inst.instance_id
            );
            if inst.brands.is_empty() {
                return unchanged(ctx, inst.brands);
            }
            if !ctx.confirm(yes, &q)? {
                ctx.out.info("Nothing removed.");
                return Ok(());
            }
            let note = brands_note(&user, "brand clear", &inst, &[]);
            let inst = ctx.store()?.audited(note).set_brands(inst.id, &[])?;
            changed_brands(ctx, inst.brands)
        }
    }
}

/// Whether two brand lists hold the same brands.
fn same_brands(a: &[String], b: &[String]) -> bool {
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v.dedup();
        v
    };
    sorted(a) == sorted(b)
}

/// A brand command that would change nothing: it writes nothing (and adds
/// no audit entry), and says so.
fn unchanged(ctx: &Ctx, brands: Vec<String>) -> Result<()> {
    ctx.out.info("Nothing changed.");
    changed_brands(ctx, brands)
}

/// The audit entry of a brand change: the brands before and after.
fn brands_note(user: &User, command: &str, inst: &Instance, after: &[String]) -> AuditNote {
    let mut after = after.to_vec();
    after.sort();
    after.dedup();
    let list = |b: &[String]| {
        if b.is_empty() {
            "(none)".to_owned()
        } else {
            b.join(", ")
        }
    };
    AuditNote::instance(
        &user.name,
        command,
        inst,
        format!("brands: {} -> {}", list(&inst.brands), list(&after)),
    )
}

/// After a change: the resulting brands in machine formats, a line on stderr otherwise.
fn changed_brands(ctx: &Ctx, brands: Vec<String>) -> Result<()> {
    if ctx.out.format.is_machine() {
        return print_brands(ctx, brands);
    }
    if brands.is_empty() {
        ctx.out.info("No brands left.");
    } else {
        ctx.out.info(format!("Brands: {}", brands.join(", ")));
    }
    Ok(())
}

fn print_brands(ctx: &Ctx, brands: Vec<String>) -> Result<()> {
    if ctx.out.format == Format::Json {
        return ctx.out.one(&brands);
    }
    let list: Vec<Brand> = brands.into_iter().map(Brand).collect();
    ctx.out.list(&list)
}
