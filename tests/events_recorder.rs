//! The operator's event recorder against the real API server: the same event again becomes a
//! series on the first (one object, `series.count` 2), a different note is an event of its own.

mod support;

use gdap_operator::controllers::events::EventRecorder;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Resource, ResourceExt};

fn event(note: &str) -> Event {
    Event {
        type_: EventType::Normal,
        reason: "Tested".into(),
        note: Some(note.into()),
        action: "Test".into(),
        secondary: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_again_is_a_series_and_another_note_a_new_event() {
    let cp = support::controlplane::get();
    let namespace = cp.namespace("events");
    let client = cp.client().await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let mut object = ConfigMap::default();
    object.metadata.name = Some("regarding".into());
    let object = maps.create(&PostParams::default(), &object).await.unwrap();
    let recorder = EventRecorder::new(
        client.clone(),
        Reporter {
            controller: "gdap-operator-test".into(),
            instance: None,
        },
    );
    let regarding = object.object_ref(&());
    recorder.publish(&event("first"), &regarding).await.unwrap();
    recorder.publish(&event("first"), &regarding).await.unwrap();
    recorder
        .publish(&event("second"), &regarding)
        .await
        .unwrap();

    let events: Api<K8sEvent> = Api::namespaced(client, &namespace);
    let mut listed: Vec<(String, Option<i32>)> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("regarding"))
        .map(|e| {
            (
                e.note.clone().unwrap_or_default(),
                e.series.map(|s| s.count),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [("first".to_string(), Some(2)), ("second".to_string(), None)],
        "events of {}",
        object.name_any()
    );
}
