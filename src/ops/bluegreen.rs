//! Blue-green releases: the new version comes up at full size as the other colour's
//! Deployment (`APP-blue` or `APP-green`, pods labelled `xone.io/color`), and once it is
//! Available the app's Service is switched to it in one write. The colour it replaced keeps
//! running for `--keep` (default 1h), so that `xone rollback` switches back at once; the next
//! blue-green deploy of the app removes one whose keep has passed. Which colour serves, which
//! served before and until when it is kept are annotations of the Service, so any machine
//! reads them.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::gray_state;
use super::release::{self, Options, Plan};
use super::target::{self, Target};
use super::{events, Scope};
use crate::adapters::cluster::{Cluster, End, Follow};
use crate::clock;
use crate::domain::date;
use crate::domain::gray::TRACK_LABEL;
use crate::domain::manifest;
use crate::store::{self, Deploy, DeployKind, DeployStatus, Store};
use crate::ui::{human_secs, Kind, Result, XoneError};

const COLOR_LABEL: &str = "xone.io/color";
use manifest::ACTIVE;
/// The Deployment it sent to before, kept for a switch back.
const PREVIOUS: &str = "xone.io/previous";
/// The Service's selector before the switch (JSON).
const PREVIOUS_SELECTOR: &str = "xone.io/previous-selector";
/// Until when the previous Deployment is kept (RFC 3339).
const KEEP_UNTIL: &str = "xone.io/keep-until";

fn annotation<'v>(obj: &'v Value, key: &str) -> Option<&'v str> {
    obj["metadata"]["annotations"][key].as_str().filter(|s| !s.is_empty())
}

/// Deploys a plan blue-green: the other colour at full size, followed until Available, then
/// the Service switched to it. Returns the record; a failure leaves the Service as it was.
pub fn deploy(
    scope: &Scope,
    store: &mut Store,
    plan: &Plan,
    keep: u64,
    o: &Options,
    actor: &str,
) -> Result<Deploy> {
    let (app, env) = (&plan.app, &plan.env);
    let Some(service) = plan.objects.iter().find(|o| o["kind"] == "Service").cloned() else {
        return Err(XoneError::gate(format!(
            "a blue-green release switches the Service of {}, and it has none",
            app.name
        ))
        .hint(format!(
            "give it a port: xone project app set {} {} --port N",
            app.project, app.name
        )));
    };
    let service_name = service["metadata"]["name"].as_str().unwrap_or(&app.name).to_string();
    let cl = target::connect(env, scope.remote.clone())?;
    if let Some(g) = gray_state::in_flight(&cl, &app.name)? {
        return Err(gray_state::busy(&g, &env.name));
    }
    if !cl.namespace_exists()? {
        if !o.create_namespace {
            return Err(XoneError::gate(format!(
                "namespace {} does not exist in context {}",
                env.namespace, env.context
            ))
            .hint("add --create-namespace, or create it yourself"));
        }
        cl.create_namespace()?;
    }
    collect(&cl, &service_name)?;
    let live = cl.service(&service_name)?;
    let serving = match live.as_ref().and_then(|s| annotation(s, ACTIVE)) {
        Some(a) => Some(a.to_string()),
        None => cl.deployment(&plan.deployment)?.map(|_| plan.deployment.clone()),
    };
    // The colour that is not serving.
    let color = match serving.as_deref() {
        Some(s) if s.ends_with("-blue") => "green",
        _ => "blue",
    };
    let name = format!("{}-{color}", plan.deployment);
    // What the Service selected before, for a switch back. A Deployment without a colour is
    // told from the colours by its pods' track (`stable`; a colour's pods carry their colour),
    // so that switching back to it leaves the colours out.
    let mut before_selector = live
        .as_ref()
        .map(|s| s["spec"]["selector"].clone())
        .unwrap_or_else(|| service["spec"]["selector"].clone());
    if before_selector.get(COLOR_LABEL).is_none() {
        if let Some(plain) = serving.as_deref().map(|s| cl.deployment(s)).transpose()?.flatten() {
            let track = plain
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.labels.as_ref())
                .and_then(|l| l.get(TRACK_LABEL).cloned());
            if track.as_deref() != Some("stable") {
                return Err(XoneError::gate(format!(
                    "the pods of {} in {} do not carry {TRACK_LABEL}: stable, so a switch back could not leave the new colour out",
                    app.name, env.name
                ))
                .hint(format!(
                    "deploy it once with this xone (xone deploy {} --env {} --build ID), then release it blue-green",
                    app.name, env.name
                )));
            }
            before_selector[TRACK_LABEL] = json!("stable");
        }
    }
    let record = Deploy { detail: Some(format!("blue-green: {name}")), ..plan.record(actor) };
    let id = store.write(|tx| store::start_deploy(tx, &record))?;
    let fail = |store: &mut Store, what: String| -> Result<()> {
        store.write(|tx| {
            super::notify::finish_deploy(actor, tx, id, DeployStatus::Failed, None, Some(&what))
        })
    };
    // Everything but the Deployment and the Service first, then the new colour.
    for obj in plan.objects.iter().filter(|o| o["kind"] != "Deployment" && o["kind"] != "Service") {
        if let Err(e) = cl.apply(obj, o.force_conflicts) {
            fail(store, format!("apply: {}", e.message))?;
            return Err(e);
        }
    }
    let mut deployment = plan
        .objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == plan.deployment.as_str())
        .cloned()
        .ok_or_else(|| XoneError::internal("the plan has no Deployment"))?;
    deployment["metadata"]["name"] = json!(name);
    deployment["metadata"]["labels"][COLOR_LABEL] = json!(color);
    deployment["spec"]["selector"]["matchLabels"][COLOR_LABEL] = json!(color);
    deployment["spec"]["template"]["metadata"]["labels"][COLOR_LABEL] = json!(color);
    deployment["spec"]["template"]["metadata"]["labels"][TRACK_LABEL] = json!(color);
    let applied = match cl.apply(&deployment, true) {
        Ok(v) => v,
        Err(e) => {
            fail(store, format!("apply: {}", e.message))?;
            return Err(e);
        }
    };
    let selector = release::pod_selector(&deployment).unwrap_or_default();
    let f = Follow {
        name: &name,
        generation: applied["metadata"]["generation"].as_i64().unwrap_or(0),
        selector,
        image: &plan.image,
        limit: release::stall_limit(plan.deadline),
    };
    let revision = match release::follow(scope.ui, &cl, &app.name, &f)? {
        End::Complete { revision, .. } => revision,
        End::Failed(failure) => {
            let what = release::describe(&failure);
            cl.delete_deployment(&name)?;
            fail(
                store,
                format!("{what}; {name} removed, the Service still sends to the old colour"),
            )?;
            return Err(XoneError::new(
                Kind::Rollout,
                format!("the blue-green release of {} to {} failed: {what}", app.name, env.name),
            )
            .hint(format!(
                "nothing was switched: {} still serves; {name} was removed",
                serving.as_deref().unwrap_or("the old version")
            )));
        }
        End::Interrupted { .. } => {
            fail(store, "interrupted before the switch".into())?;
            return Err(XoneError::new(
                Kind::Interrupted,
                format!("stopped before switching {} in {}", app.name, env.name),
            )
            .hint("nothing was switched; deploy again to finish"));
        }
    };
    // The switch: one write of the Service.
    let until = date::rfc3339(clock::unix_now() + keep as i64);
    let mut svc = service.clone();
    svc["spec"]["selector"][COLOR_LABEL] = json!(color);
    let notes = &mut svc["metadata"]["annotations"];
    notes[ACTIVE] = json!(name);
    notes[PREVIOUS] = json!(serving.clone().unwrap_or_default());
    notes[PREVIOUS_SELECTOR] = json!(before_selector.to_string());
    notes[KEEP_UNTIL] = json!(until);
    if let Err(e) = cl.apply(&svc, true) {
        fail(store, format!("switching the Service: {}", e.message))?;
        return Err(e);
    }
    // The colour before the one just replaced is no longer wanted, kept or not.
    let older = live.as_ref().and_then(|s| annotation(s, PREVIOUS)).map(str::to_string);
    if let Some(older) = older.filter(|o| *o != name && Some(o) != serving.as_ref()) {
        cl.delete_deployment(&older)?;
    }
    let detail = format!(
        "blue-green: {name} serves; {} kept until {until}",
        serving.as_deref().unwrap_or("nothing")
    );
    store.write(|tx| {
        super::notify::finish_deploy(
            actor,
            tx,
            id,
            DeployStatus::Succeeded,
            revision,
            Some(&detail),
        )?;
        let on = format!("{} to {}: {} (blue-green, {color})", app.name, env.name, plan.image);
        events::on_requirement(tx, plan.requirement.as_deref(), actor, "deploy", on)
    })?;
    scope.ui.status(format!(
        "{} in {}: switched to {name} ({}); {} is kept for {} for `xone rollback`",
        app.name,
        env.name,
        plan.image,
        serving.as_deref().unwrap_or("nothing"),
        human_secs(keep as i64)
    ));
    store::deploy(store.conn(), id)
}

/// Removes the previous colour of a blue-green app once its keep has passed: done by the
/// next command that looks at the app's Service.
pub fn collect(cl: &Cluster, service: &str) -> Result<()> {
    let Some(svc) = cl.service(service)? else { return Ok(()) };
    let (Some(previous), Some(until)) = (annotation(&svc, PREVIOUS), annotation(&svc, KEEP_UNTIL))
    else {
        return Ok(());
    };
    let passed = date::parse_rfc3339(until).is_some_and(|u| u <= clock::unix_now());
    if passed && Some(previous) != annotation(&svc, ACTIVE) {
        cl.delete_deployment(previous)?;
    }
    Ok(())
}

/// `xone rollback` of a blue-green app: the Service switched back to the colour kept, at
/// once. `None` when the app is not released blue-green.
pub fn switch_back(
    scope: &Scope,
    store: &mut Store,
    t: &Target,
    actor: &str,
) -> Result<Option<Deploy>> {
    let (app, env, cl) = (&t.app, &t.env, &t.cluster);
    let Some(svc) = cl.service(&app.name)? else { return Ok(None) };
    let Some(active) = annotation(&svc, ACTIVE).map(str::to_string) else { return Ok(None) };
    collect(cl, &app.name)?;
    let previous = annotation(&svc, PREVIOUS).map(str::to_string);
    let kept = match &previous {
        Some(p) => cl.deployment(p)?,
        None => None,
    };
    let (Some(previous), Some(kept)) = (previous, kept) else {
        return Err(XoneError::gate(format!(
            "{} in {} has no colour kept to switch back to",
            app.name, env.name
        ))
        .cause("the one before was removed once its keep passed")
        .hint(format!(
            "deploy the version you want: xone deploy {} --env {} --build ID",
            app.name, env.name
        )));
    };
    let ready = kept.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
    if ready == 0 {
        return Err(XoneError::gate(format!(
            "{previous}, the colour kept for {}, has no available pod to switch back to",
            app.name
        ))
        .hint(format!("xone deploy status {} --env {}", app.name, env.name)));
    }
    let selector: Value = annotation(&svc, PREVIOUS_SELECTOR)
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| {
            XoneError::gate(format!(
                "the Service of {} does not say what it selected before",
                app.name
            ))
        })?;
    let mut notes: BTreeMap<String, String> = svc["metadata"]["annotations"]
        .as_object()
        .map(|m| {
            m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect()
        })
        .unwrap_or_default();
    notes.insert(ACTIVE.into(), previous.clone());
    notes.insert(PREVIOUS.into(), active.clone());
    notes.insert(PREVIOUS_SELECTOR.into(), svc["spec"]["selector"].to_string());
    let obj = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": app.name,
            "namespace": env.namespace,
            "labels": svc["metadata"]["labels"],
            "annotations": notes,
        },
        "spec": { "selector": selector, "ports": svc["spec"]["ports"] },
    });
    let image = kept
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.iter().find(|c| c.name == app.name).or(s.containers.first()))
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let record = Deploy {
        project: app.project.clone(),
        app: app.name.clone(),
        env: env.name.clone(),
        kind: DeployKind::Rollback,
        image: image.clone(),
        context: env.context.clone(),
        namespace: env.namespace.clone(),
        requirement: kept
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(manifest::REQUIREMENT).cloned()),
        actor: actor.to_string(),
        ..Deploy::default()
    };
    let id = store.write(|tx| store::start_deploy(tx, &record))?;
    cl.apply(&obj, true)?;
    let detail = format!("blue-green: switched back from {active} to {previous} ({image})");
    store.write(|tx| {
        super::notify::finish_deploy(actor, tx, id, DeployStatus::Succeeded, None, Some(&detail))?;
        let on = format!("{} in {}: {detail}", app.name, env.name);
        events::on_requirement(tx, record.requirement.as_deref(), actor, "rollback", on)
    })?;
    scope.ui.status(format!("{} in {}: {detail}", app.name, env.name));
    store::deploy(store.conn(), id).map(Some)
}
