//! A StockStream's life: created with its objects, updated (rolls), resized, repaired after
//! drift, deleted (finalizer deletes the topic, the garbage collector the objects).

use crate::harness::*;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use std::time::Duration;
use ticklake_bus::kafka::KafkaBus;

fn config_hash(s: &StatefulSet) -> String {
    s.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().annotations.as_ref().unwrap()
        ["ticklake.dev/config-hash"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stockstream_create_update_drift_delete() {
    let c = client().await;
    install_crds(&c).await;
    let ns = namespace(&c, "life").await;
    let op = Operator::start(&ns, "op", &[]).await;
    let kafka = KafkaBus::new(&need("TICKLAKE_TEST_KAFKA_BOOTSTRAP")).unwrap();
    let topic = unique("life");
    let mut manifest = stockstream_manifest("life", &topic, 2);
    manifest["spec"]["topicDeletionPolicy"] = json!("delete");
    apply(&c, &ns, manifest.clone()).await;

    // Created: ConfigMap + StatefulSet owned by the StockStream, the topic, the finalizer.
    let sets: Api<StatefulSet> = Api::namespaced(c.clone(), &ns);
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let sts = wait_for(Duration::from_secs(60), "the StatefulSet", || async {
        sets.get_opt("life-producer").await.ok().flatten()
    })
    .await;
    let cm = cms.get("life-producer-config").await.unwrap();
    let ss = get_json(&c, &ns, "stockstreams", "life").await.unwrap();
    for owners in [sts.metadata.owner_references.clone().unwrap(), cm.metadata.owner_references.clone().unwrap()] {
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "StockStream");
        assert_eq!(owners[0].uid, ss["metadata"]["uid"].as_str().unwrap());
        assert_eq!(owners[0].controller, Some(true));
    }
    assert_eq!(ss["metadata"]["finalizers"], json!(["ticklake.dev/cleanup"]));
    assert_eq!(sts.spec.as_ref().unwrap().replicas, Some(2));
    assert!(cm.data.unwrap()["resource.yaml"].contains(&topic));
    wait_for(Duration::from_secs(30), "the topic", || async {
        (kafka.topic_partitions(&topic).await.ok()?? == 2).then_some(())
    })
    .await;
    // The controller-manager creates the pods (they stay Pending: there is no kubelet), and
    // the status says so truthfully.
    let (ready, _) = wait_conditions(&c, &ns, "stockstreams", "life", "PodsStarting").await;
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["observedGeneration"], 1);
    let ss = get_json(&c, &ns, "stockstreams", "life").await.unwrap();
    assert_eq!(ss["status"]["topicPartitions"], 2);
    assert_eq!(ss["status"]["observedGeneration"], 1);
    let table = kubectl(&["get", "stockstreams", "-n", &ns]);
    assert!(table.contains("life") && table.contains(&topic) && table.contains("False"), "{table}");

    // A spec change rolls the producers: new configuration, new pod-template hash.
    let before = config_hash(&sts);
    manifest["spec"]["source"]["simulator"]["ticksPerSecond"] = json!(900);
    manifest["spec"]["partitions"] = json!(4);
    apply(&c, &ns, manifest.clone()).await;
    let rolled = wait_for(Duration::from_secs(60), "the rolled StatefulSet", || async {
        let s = sets.get("life-producer").await.ok()?;
        (config_hash(&s) != before).then_some(s)
    })
    .await;
    assert!(rolled.metadata.generation > sts.metadata.generation);
    assert!(cms.get("life-producer-config").await.unwrap().data.unwrap()["resource.yaml"].contains("900"));
    wait_for(Duration::from_secs(30), "the topic grown to 4 partitions", || async {
        (kafka.topic_partitions(&topic).await.ok()?? == 4).then_some(())
    })
    .await;
    wait_for(Duration::from_secs(30), "status of generation 2", || async {
        let s = get_json(&c, &ns, "stockstreams", "life").await?;
        (s["status"]["observedGeneration"] == 2 && s["status"]["topicPartitions"] == 4).then_some(())
    })
    .await;

    // Drift: someone edits the image and the replicas — put back.
    let edit = json!({"spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "producer", "image": "evil:latest"}]}}}});
    sets.patch("life-producer", &PatchParams::default(), &Patch::Strategic(&edit)).await.unwrap();
    wait_for(Duration::from_secs(30), "the edit repaired", || async {
        let s = sets.get("life-producer").await.ok()?;
        let spec = s.spec?;
        (spec.replicas == Some(2) && spec.template.spec?.containers[0].image.as_deref() == Some("ticklake:test"))
            .then_some(())
    })
    .await;
    // Drift: someone deletes the StatefulSet and the ConfigMap — recreated.
    let old_uid = sets.get("life-producer").await.unwrap().metadata.uid;
    sets.delete("life-producer", &DeleteParams::default()).await.unwrap();
    cms.delete("life-producer-config", &DeleteParams::default()).await.unwrap();
    wait_for(Duration::from_secs(30), "the StatefulSet recreated", || async {
        let s = sets.get_opt("life-producer").await.ok()??;
        let cm = cms.get_opt("life-producer-config").await.ok()??;
        (s.metadata.uid != old_uid && cm.data.is_some()).then_some(())
    })
    .await;
    let events = kubectl(&["get", "events", "-n", &ns, "--field-selector", "involvedObject.name=life"]);
    for reason in ["Created", "Updated", "TopicCreated", "TopicResized"] {
        assert!(events.contains(reason), "event {reason} missing:\n{events}");
    }

    // Delete: the finalizer stops the producers and deletes the topic; the garbage collector
    // removes the ConfigMap.
    let api: Api<ticklake_api::crd::StockStream> = Api::namespaced(c.clone(), &ns);
    api.delete("life", &DeleteParams::default()).await.unwrap();
    wait_for(Duration::from_secs(60), "the StockStream gone", || async {
        api.get_opt("life").await.ok()?.is_none().then_some(())
    })
    .await;
    wait_for(Duration::from_secs(30), "the topic deleted", || async {
        kafka.topic_partitions(&topic).await.ok()?.is_none().then_some(())
    })
    .await;
    wait_for(Duration::from_secs(60), "owned objects collected", || async {
        let s = sets.get_opt("life-producer").await.ok()?;
        let cm = cms.get_opt("life-producer-config").await.ok()?;
        (s.is_none() && cm.is_none()).then_some(())
    })
    .await;
    // With the default policy (retain) the topic outlives its StockStream.
    let kept = unique("kept");
    apply(&c, &ns, stockstream_manifest("kept", &kept, 1)).await;
    wait_for(Duration::from_secs(30), "the kept topic", || async {
        kafka.topic_partitions(&kept).await.ok()?.map(|_| ())
    })
    .await;
    let s = get_json(&c, &ns, "stockstreams", "kept").await.unwrap();
    assert!(s["metadata"]["finalizers"].is_null(), "no finalizer without something to clean: {s}");
    api.delete("kept", &DeleteParams::default()).await.unwrap();
    wait_for(Duration::from_secs(30), "kept deleted", || async {
        api.get_opt("kept").await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(kafka.topic_partitions(&kept).await.unwrap(), Some(2), "topic retained");
    drop(op);
    drop_namespace(&c, &ns).await;
}
