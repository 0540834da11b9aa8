//! 国有土地出让金监督模型: land transfer contracts with overdue price
//! instalments (lead A), property certificates issued before full payment
//! (lead B), and parcels won by a bidder on the dishonest judgment debtors
//! list (lead C). One lead per contract, listing which findings apply. See
//! README.md beside this file for the rule in plain words.

use jiandu_sdk::{export_model, Context, Date, Decimal, Lead, Model, Result, Yuan};
use serde::Deserialize;

pub mod rule;

#[derive(Deserialize)]
struct LandContract {
    contract_no: String,
    parcel_no: String,
    transferee_credit_code: String,
    transferee_name: String,
    signed_on: Date,
    price: Decimal,
    certificate_on: Option<Date>,
    collection_notice_on: Option<Date>,
    cancelled_on: Option<Date>,
}

#[derive(Deserialize)]
struct Instalment {
    contract_no: String,
    due_on: Date,
    amount: Decimal,
}

#[derive(Deserialize)]
struct Payment {
    contract_no: String,
    amount: Decimal,
    paid_on: Date,
}

#[derive(Deserialize)]
struct Bid {
    bidder_credit_code: String,
    bidder_name: Option<String>,
    bid_on: Date,
    won: bool,
}

#[derive(Deserialize)]
struct Listing {
    list_no: String,
    listed_on: Date,
    removed_on: Option<Date>,
}

pub struct LandTransferFeeArrears;

fn date_text(d: Option<Date>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

impl Model for LandTransferFeeArrears {
    fn run(ctx: &mut Context) -> Result<()> {
        let p = rule::Params::from_context(ctx)?;
        let mut plans = ctx
            .read("land_instalments")
            .into::<Instalment>()?
            .keyed(|i| i.contract_no.clone());
        let mut payments = ctx
            .read("land_payments")
            .into::<Payment>()?
            .keyed(|p| p.contract_no.clone());
        let mut counts = [0u64; 3];
        for row in ctx.read("land_contracts").into::<LandContract>()? {
            let c = row?;
            let plan: Vec<rule::Instalment> = plans
                .take(&c.contract_no)?
                .into_iter()
                .map(|i| rule::Instalment {
                    due_on: i.due_on,
                    amount: i.amount,
                })
                .collect();
            let paid_rows: Vec<rule::Payment> = payments
                .take(&c.contract_no)?
                .into_iter()
                .map(|p| rule::Payment {
                    amount: p.amount,
                    paid_on: p.paid_on,
                })
                .collect();
            if c.signed_on > p.as_of {
                continue;
            }
            let contract = rule::Contract {
                signed_on: c.signed_on,
                price: c.price,
                certificate_on: c.certificate_on,
                collection_notice_on: c.collection_notice_on,
                cancelled_on: c.cancelled_on,
            };
            let schedule = p.schedule(&contract, &plan);
            let arrears = p.arrears(&schedule, &paid_rows);
            let early_certificate = p.certificate_before_payment(&contract, &paid_rows);
            let mut dishonest = Vec::new();
            for bid in ctx.lookup::<Bid>("land_bids", "by_parcel", &c.parcel_no)? {
                if !bid.won {
                    continue;
                }
                let listings: Vec<rule::Listing> = ctx
                    .lookup::<Listing>(
                        "dishonest_debtors",
                        "by_credit_code",
                        &bid.bidder_credit_code,
                    )?
                    .into_iter()
                    .map(|l| rule::Listing {
                        list_no: l.list_no,
                        listed_on: l.listed_on,
                        removed_on: l.removed_on,
                    })
                    .collect();
                if let Some(l) = p.listed_on_bid_date(bid.bid_on, &listings) {
                    dishonest.push(format!(
                        "{} {} 竞得于{}，名单{}（{}列入{}）",
                        bid.bidder_credit_code,
                        bid.bidder_name.as_deref().unwrap_or(""),
                        bid.bid_on,
                        l.list_no,
                        l.listed_on,
                        match l.removed_on {
                            Some(r) => format!("，{r}移出"),
                            None => String::new(),
                        }
                    ));
                }
            }
            let a = !arrears.overdue.is_empty();
            let b = early_certificate.is_some();
            let cc = !dishonest.is_empty();
            if !(a || b || cc) {
                continue;
            }
            let mut findings = Vec::new();
            let mut titles = Vec::new();
            if a {
                counts[0] += 1;
                findings.push("A 逾期欠缴出让价款");
                titles.push("欠缴出让价款");
            }
            if b {
                counts[1] += 1;
                findings.push("B 未缴清价款即发证");
                titles.push("未缴清即发证");
            }
            if cc {
                counts[2] += 1;
                findings.push("C 失信被执行人竞得");
                titles.push("失信被执行人竞得");
            }
            let paid = p.paid(&paid_rows);
            let mut lead = Lead::new(&c.contract_no)
                .title(format!(
                    "{} 土地出让合同{}：{}",
                    c.transferee_name,
                    c.contract_no,
                    titles.join("、")
                ))
                .evidence("findings", findings.join("; "))
                .evidence("transferee", &c.transferee_name)
                .evidence("transferee_credit_code", &c.transferee_credit_code)
                .evidence("parcel_no", &c.parcel_no)
                .evidence("signed_on", c.signed_on)
                .evidence("price", Yuan(c.price))
                .evidence("paid", Yuan(paid))
                .evidence("outstanding", Yuan((c.price - paid).max(Decimal::ZERO)))
                .evidence("plan_within_rule", p.plan_within_rule(&contract, &schedule));
            if a {
                let flag = p.no_action_flag(&arrears, &contract);
                lead = lead
                    .amount(arrears.total)
                    .evidence("overdue_arrears", Yuan(arrears.total))
                    .evidence(
                        "overdue_instalments",
                        arrears
                            .overdue
                            .iter()
                            .map(|o| {
                                format!(
                                    "{} 欠{} 逾期{}天 违约金{}",
                                    o.due_on,
                                    Yuan(o.unpaid),
                                    o.days_late,
                                    Yuan(o.penalty)
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                    .evidence("max_days_late", arrears.max_days_late)
                    .evidence("penalty", Yuan(arrears.penalty))
                    .evidence("overdue_no_action_flag", flag)
                    .evidence("collection_notice_on", date_text(c.collection_notice_on))
                    .evidence("cancelled_on", date_text(c.cancelled_on));
            }
            if let Some(cert) = early_certificate {
                lead = lead.evidence("certificate_on", cert).evidence(
                    "fully_paid_on",
                    date_text(p.fully_paid_on(c.price, &paid_rows)),
                );
            }
            if cc {
                lead = lead.evidence("dishonest_winner", dishonest.join("; "));
            }
            ctx.emit(lead)?;
        }
        ctx.info(format!(
            "as of {}: {} contracts in arrears, {} certificates before full payment, {} won by dishonest debtors",
            p.as_of, counts[0], counts[1], counts[2]
        ));
        Ok(())
    }
}

export_model!(LandTransferFeeArrears);
