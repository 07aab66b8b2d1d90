//! `POST /api/admin/risk/recompute`: rescore every pool of every linked account with the
//! current model (MOD-AI-01), reporting counts.

use std::collections::HashSet;

use serde_json::json;
use spot_models::{accounts, jobs, risk as risk_store};

use crate::{progress, Done, Failure, JobContext};

pub const KIND: &str = "risk_recompute";

pub async fn run(ctx: &JobContext, job: &jobs::JobRow) -> Result<Done, Failure> {
    let linked = accounts::all_linked(&ctx.db)
        .await
        .map_err(|e| Failure::new(e.to_string(), json!({})))?;
    let model = ctx.risk.current();
    let (mut pools, mut instances, mut failed) = (0usize, 0usize, Vec::new());
    let n = linked.len().max(1);
    for (k, account) in linked.iter().enumerate() {
        let outcome: Result<(usize, usize), String> = async {
            let ciphertext = accounts::credentials(&ctx.db, &account.id)
                .await
                .map_err(|e| e.to_string())?;
            let target = spot_actors::system::target_of(&ctx.keyring, account, ciphertext)?;
            let cloud = ctx
                .connector
                .connect(&target)
                .await
                .map_err(|e| spot_actors::system::human(&e))?;
            let running: Vec<_> = cloud
                .describe_instances()
                .await
                .map_err(|e| spot_actors::system::human(&e))?
                .into_iter()
                .filter(|i| i.state == spot_cloud::InstanceState::Running)
                .collect();
            let set: HashSet<(String, String)> = running
                .iter()
                .map(|i| (i.instance_type.clone(), i.az.clone()))
                .collect();
            let rows =
                spot_actors::risk::score_pools(cloud.as_ref(), &model, ctx.hive.as_ref(), &set)
                    .await
                    .map_err(|e| spot_actors::system::human(&e))?;
            let scored: HashSet<(&str, &str)> = rows
                .iter()
                .map(|r| (r.instance_type.as_str(), r.az.as_str()))
                .collect();
            let inst = running
                .iter()
                .filter(|i| scored.contains(&(i.instance_type.as_str(), i.az.as_str())))
                .count();
            risk_store::upsert_pool_risk(&ctx.db, &rows)
                .await
                .map_err(|e| e.to_string())?;
            Ok((rows.len(), inst))
        }
        .await;
        match outcome {
            Ok((p, i)) => {
                pools += p;
                instances += i;
            }
            Err(e) => failed.push(json!({"account_id": account.id, "error": e})),
        }
        progress(
            ctx,
            job,
            5 + (90 * (k + 1) / n) as i64,
            &format!("{} of {} accounts rescored", k + 1, linked.len()),
        )
        .await;
    }
    let result = json!({"accounts": linked.len(), "pools": pools, "instances": instances, "failed": failed, "model": model.id, "degraded": model.degraded()});
    let message = format!(
        "{pools} pools and {instances} instances rescored with {} across {} accounts",
        model.id,
        linked.len()
    );
    if failed.is_empty() {
        Ok(Done { message, result })
    } else {
        Err(Failure::new(
            format!("{message}; {} accounts failed", failed.len()),
            result,
        ))
    }
}
