//! National holidays for the hibernation calendar's one-click import: the supported
//! countries, exact dates (with observed substitute days) and field-named 422s.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both;
use crate::support::{assert_error, Backend, TestApp};

async fn national_holidays_are_listed_with_exact_dates(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Holiday Org").await;
    let (st, v) = app
        .json(
            Method::GET,
            "/api/holidays/countries",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let codes: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["code"].as_str())
        .collect();
    assert_eq!(codes, ["AU", "CA", "DE", "FR", "GB", "IE", "NL", "US"]);
    assert_eq!(v["first_year"], 2024);

    let (st, v) = app
        .json(
            Method::GET,
            "/api/holidays?country=de&year=2027",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["country"], "DE");
    assert_eq!(v["country_name"], "Germany");
    let dates: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|h| h["date"].as_str())
        .collect();
    assert_eq!(
        dates,
        [
            "2027-01-01",
            "2027-03-26",
            "2027-03-29",
            "2027-05-01",
            "2027-05-06",
            "2027-05-17",
            "2027-10-03",
            "2027-12-25",
            "2027-12-26"
        ]
    );
    assert_eq!(v["items"][1]["name"], "Good Friday");

    // Boxing Day 2026 is a Saturday: observed on Monday the 28th.
    let (_, v) = app
        .json(
            Method::GET,
            "/api/holidays?country=GB&year=2026",
            Some(&s.access),
            None,
        )
        .await;
    let last = v["items"].as_array().and_then(|a| a.last()).cloned();
    assert_eq!(
        last,
        Some(json!({"date": "2026-12-28", "name": "Boxing Day (observed)"}))
    );

    for (query, field) in [
        ("country=XX&year=2027", "country"),
        ("year=2027", "country"),
        ("country=US&year=1999", "year"),
        ("country=US&year=soon", "year"),
    ] {
        let (st, e) = app
            .json(
                Method::GET,
                &format!("/api/holidays?{query}"),
                Some(&s.access),
                None,
            )
            .await;
        let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["error"]["field"], field, "{query}: {e}");
    }
    // Signed-in users only.
    let (st, _) = app
        .json(Method::GET, "/api/holidays?country=US", None, None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}
both!(national_holidays_are_listed_with_exact_dates);
