use super::*;

fn svc(dir: &Path, bip: Option<&str>) -> Arc<NetworkService> {
    NetworkService::open(
        &dir.join("data"),
        &dir.join("exec"),
        NetworkConfig {
            bridge: "bt0".into(),
            bip: bip.map(str::to_string),
        },
        Arc::default(),
    )
    .unwrap()
}

#[test]
fn bad_bridge_name_or_bip_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let open = |bridge: &str, bip: Option<&str>| {
        NetworkService::open(
            d.path(),
            d.path(),
            NetworkConfig {
                bridge: bridge.into(),
                bip: bip.map(str::to_string),
            },
            Arc::default(),
        )
    };
    assert!(open("a-very-long-bridge-name", None).is_err());
    assert!(open("ok0", Some("10.0.0.1")).is_err());
    assert!(open("ok0", Some("10.0.0.1/24")).is_ok());
}

#[test]
fn bip_sets_default_subnet_and_gateway_and_ids_persist() {
    let d = tempfile::tempdir().unwrap();
    let s = svc(d.path(), Some("10.77.0.1/24"));
    s.ensure_default_ipam().unwrap();
    s.persist().unwrap();
    let id = s.lock().default_id();
    let ipam = s.lock().networks[&id].ipam.clone().unwrap();
    assert_eq!(ipam.subnet.to_string(), "10.77.0.0/24");
    assert_eq!(ipam.gateway, Ipv4Addr::new(10, 77, 0, 1));
    let again = svc(d.path(), None);
    assert_eq!(again.lock().default_id(), id);
    assert_eq!(again.lock().networks[&id].ipam, Some(ipam));
    assert_eq!(again.table(), "berth-bt0");
}

#[test]
fn networks_are_listed_and_found_by_name_or_prefix() {
    let d = tempfile::tempdir().unwrap();
    let s = svc(d.path(), None);
    let names = BTreeMap::new();
    let list = s.list(&names);
    let got: Vec<&str> = list.iter().map(|n| n["Name"].as_str().unwrap()).collect();
    assert_eq!(got, ["bridge", "host", "none"]);
    let host_id = builtin_id("host");
    assert_eq!(s.inspect(&host_id[..12], &names).unwrap()["Name"], "host");
    let bridge = s.inspect("bridge", &names).unwrap();
    let id = bridge["Id"].as_str().unwrap();
    assert_eq!(s.inspect(&id[..10], &names).unwrap()["Name"], "bridge");
    assert_eq!(
        s.inspect("nope", &names).unwrap_err().message(),
        "network nope not found"
    );
}

#[test]
fn register_checks_networks_and_keeps_endpoint_config() {
    let d = tempfile::tempdir().unwrap();
    let s = svc(d.path(), None);
    let err = s.register("c1", "nope", None, None, &[]).unwrap_err();
    assert_eq!(err.message(), "network nope not found");
    s.register("c1", "host", None, None, &[]).unwrap();
    let nc = serde_json::json!({"EndpointsConfig": {"bridge": {"Aliases": ["x"]}}});
    assert!(s.register("c1", "bridge", Some(&nc), None, &[]).is_err());
    s.register("c2", "bridge", None, None, &[]).unwrap();
    assert_eq!(s.lock().configs["c2"].len(), 1);
}

#[test]
fn endpoint_config_reads_aliases_and_address() {
    let v = serde_json::json!({"Aliases": ["db", "x"], "IPAMConfig": {"IPv4Address": "10.1.0.9"}});
    let c = endpoint_config(&v).unwrap();
    assert_eq!(c.aliases, ["db", "x"]);
    assert_eq!(c.ipv4, Some(Ipv4Addr::new(10, 1, 0, 9)));
    assert!(endpoint_config(&serde_json::json!({"IPAMConfig": {"IPv4Address": "x"}})).is_err());
    let c = endpoint_config(&serde_json::json!({"MacAddress": "02:AB:00:00:00:01"})).unwrap();
    assert_eq!(c.mac.as_deref(), Some("02:ab:00:00:00:01"));
    assert!(endpoint_config(&serde_json::json!({"MacAddress": "01:00:5e:00:00:01"})).is_err());
    assert!(endpoint_config(&serde_json::json!({"MacAddress": "nope"})).is_err());
}

#[test]
fn lookup_answers_names_on_shared_user_networks_only() {
    let d = tempfile::tempdir().unwrap();
    let s = svc(d.path(), None);
    let ep = |ip: [u8; 4], names: &[&str]| Endpoint {
        endpoint_id: String::new(),
        ip: Ipv4Addr::from(ip),
        prefix: 24,
        gateway: Ipv4Addr::new(10, 1, 0, 1),
        ipv6: None,
        mac: String::new(),
        veth: String::new(),
        inner: "eth0".into(),
        ports: vec![],
        aliases: vec![],
        dns_names: names.iter().map(|n| n.to_string()).collect(),
    };
    {
        let mut st = s.lock();
        let default = st.default_id();
        st.networks.insert(
            "n1".into(),
            Network {
                id: "n1".into(),
                name: "app".into(),
                created: String::new(),
                bridge: "b1".into(),
                ipam: None,
                internal: false,
                attachable: false,
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                default: false,
                ipam_options: None,
                aux_addresses: BTreeMap::new(),
                ipam6: None,
            },
        );
        st.endpoints.insert(
            "a".into(),
            BTreeMap::from([("n1".into(), ep([10, 1, 0, 2], &["web", "www"]))]),
        );
        st.endpoints.insert(
            "b".into(),
            BTreeMap::from([("n1".into(), ep([10, 1, 0, 3], &["client"]))]),
        );
        st.endpoints.insert(
            "c".into(),
            BTreeMap::from([(default, ep([172, 17, 0, 2], &["other"]))]),
        );
    }
    let web = Some(vec![std::net::IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2))]);
    assert_eq!(s.lookup("b", "web"), web);
    assert_eq!(s.lookup("b", "www.app"), web);
    assert_eq!(s.lookup("b", "other"), None);
    assert_eq!(s.lookup("c", "web"), None);
}
