//! `ticklake crawl` and `ticklake catalog list|show|history`, black-box: the built binary on a
//! generated tree, the catalog in a temporary data folder.

use std::path::Path;
use std::process::{Command, Output};

fn ticklake(data_dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ticklake"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("TICKLAKE_CATALOG")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    eprintln!(
        "$ ticklake {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(data_dir: &Path, args: &[&str]) -> String {
    let out = ticklake(data_dir, args);
    assert!(out.status.success(), "ticklake {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn crawl_then_list_show_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, data) = (dir.path().join("lake"), dir.path().join("data"));
    write(&lake, "orders/year=2026/month=01/a.json", "{\"id\":1,\"qty\":2,\"px\":10.5}\n");
    write(&lake, "orders/year=2026/month=02/b.json", "{\"id\":2,\"qty\":3,\"px\":11.5}\n");
    write(&lake, "customers/c.csv", "cid,name,email,city\n1,ann,a@x,Oslo\n2,bob,b@x,Rome\n");
    let lake_s = lake.to_str().unwrap();

    let out = ok(&data, &["crawl", lake_s, "--database", "shop"]);
    assert!(out.contains("tables: 2 created (customers, orders)"), "{out}");
    assert!(out.contains("4 listed") || out.contains("3 listed"), "{out}");
    assert!(data.join("catalog.sqlite").exists(), "the default catalog is <data-dir>/catalog.sqlite");

    let list = ok(&data, &["catalog", "list"]);
    assert!(list.lines().any(|l| l.starts_with("shop") && l.contains("orders") && l.contains("year,month")), "{list}");
    assert!(list.lines().any(|l| l.contains("customers") && l.contains("csv")), "{list}");
    let json = ok(&data, &["catalog", "list", "--database", "shop", "--json"]);
    assert_eq!(json.lines().count(), 2);
    assert!(ok(&data, &["catalog", "list", "--database", "other"]).lines().count() == 1, "header only");

    let show = ok(&data, &["catalog", "show", "shop.orders"]);
    for want in [
        "table shop.orders",
        "location: file:///",
        "format: json",
        "version: 1",
        "  px double",
        "partition keys: year int, month string",
        "partitions: 2",
        "files: 2",
        "classification = json",
    ] {
        assert!(show.contains(want), "{want:?} in\n{show}");
    }

    // Drift, recrawl (only the changed file is read), history.
    write(&lake, "customers/c.csv", "cid,name,email,city,vip\n1,ann,a@x,Oslo,true\n2,bob,b@x,Rome,false\n");
    let out = ok(&data, &["crawl", lake_s, "--database", "shop"]);
    assert!(out.contains("1 read"), "{out}");
    assert!(out.contains("schema: table `customers` version 2: added column vip: boolean"), "{out}");
    let history = ok(&data, &["catalog", "history", "shop.customers"]);
    assert!(history.contains("version 1 at "), "{history}");
    assert!(history.contains(": created"), "{history}");
    assert!(history.contains("version 2 at ") && history.contains("added column vip: boolean"), "{history}");
    assert!(history.contains("columns: cid int, name string, email string, city string, vip boolean"), "{history}");

    // Errors: non-zero and a clear message.
    let out = ticklake(&data, &["catalog", "show", "shop.nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no table shop.nope"));
    let out = ticklake(&data, &["crawl", dir.path().join("missing").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    let out = ticklake(&data, &["crawl", lake_s, "--database", "Bad-Name"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid database name"));
    let out = ticklake(&data, &["crawl", lake_s, "--schema-change-policy", "sometimes"]);
    assert!(!out.status.success());
}
