//! National public holidays of a few countries, computed from their rules (fixed dates,
//! Easter-based dates, n-th weekday of a month, weekend substitutions), for the
//! hibernation calendar's one-click import. No data is fetched at run time.
//!
//! Why rules here rather than a crate: the holiday crates on crates.io were evaluated
//! (2026-11): `holidays` 0.1.0 (generated from python-holidays, data ends in 2030, no
//! license, a single 2022 release) and `py-holidays-rs` 0.1.3 (python-holidays data, but it
//! downloads at run time by default and its offline build still compiles its HTTP/OpenSSL
//! client) do not meet "maintained, embedded, offline". The rules below reproduce the
//! *national* (no subdivision) calendars of python-holidays (0.109 when last checked), the maintained reference,
//! for every year in [`YEARS`]: `testdata/holidays-reference.json` holds that package's
//! dates for 2024–2040 and the unit test compares every country and year exactly
//! (`scripts/holidays-reference.py` regenerates it). Dates a government adds by decree
//! (a coronation, a state funeral) cannot be known in advance: users add those as custom
//! dates.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::Serialize;

/// Years the rules are written (and checked) for.
pub const YEARS: std::ops::RangeInclusive<i32> = 2024..=2099;

/// One holiday: the local date and its English name (an observed substitute day carries
/// the suffix " (observed)").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: String,
}

/// A supported country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Country {
    /// ISO 3166-1 alpha-2.
    pub code: &'static str,
    pub name: &'static str,
}

pub const COUNTRIES: &[Country] = &[
    Country {
        code: "AU",
        name: "Australia",
    },
    Country {
        code: "CA",
        name: "Canada",
    },
    Country {
        code: "DE",
        name: "Germany",
    },
    Country {
        code: "FR",
        name: "France",
    },
    Country {
        code: "GB",
        name: "United Kingdom",
    },
    Country {
        code: "IE",
        name: "Ireland",
    },
    Country {
        code: "NL",
        name: "Netherlands",
    },
    Country {
        code: "US",
        name: "United States",
    },
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HolidayError {
    #[error("unsupported country {0:?}; supported: AU, CA, DE, FR, GB, IE, NL, US")]
    Country(String),
    #[error("year {0} is outside {first}–{last}", first = YEARS.start(), last = YEARS.end())]
    Year(i32),
}

/// The country with this ISO code (case-insensitive).
pub fn country(code: &str) -> Option<Country> {
    COUNTRIES
        .iter()
        .copied()
        .find(|c| c.code.eq_ignore_ascii_case(code))
}

/// Easter Sunday (Gregorian, anonymous algorithm of Meeus/Jones/Butcher).
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    ymd(year, month as u32, day as u32)
}

/// A valid date (all callers pass constant or computed-in-range month/day values).
fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(NaiveDate::MIN)
}

/// The `n`-th (1-based) `weekday` of a month.
pub fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n as u8).unwrap_or(NaiveDate::MIN)
}

/// The last `weekday` of a month.
pub fn last_weekday(year: i32, month: u32, weekday: Weekday) -> NaiveDate {
    let next = if month == 12 {
        ymd(year + 1, 1, 1)
    } else {
        ymd(year, month + 1, 1)
    };
    let mut d = next - Duration::days(1);
    while d.weekday() != weekday {
        d -= Duration::days(1);
    }
    d
}

struct Calendar {
    year: i32,
    days: Vec<Holiday>,
}

impl Calendar {
    fn add(&mut self, date: NaiveDate, name: &str) {
        if date.year() == self.year {
            self.days.push(Holiday {
                date,
                name: name.to_string(),
            });
        }
    }

    fn fixed(&mut self, month: u32, day: u32, name: &str) -> NaiveDate {
        let d = ymd(self.year, month, day);
        self.add(d, name);
        d
    }

    fn easter(&mut self, offset: i64, name: &str) {
        self.add(easter(self.year) + Duration::days(offset), name);
    }

    fn observed(&mut self, date: NaiveDate, name: &str) {
        self.add(date, &format!("{name} (observed)"));
    }

    /// US federal rule: Saturday → Friday before, Sunday → Monday after.
    fn us_observed(&mut self, date: NaiveDate, name: &str) {
        match date.weekday() {
            Weekday::Sat => self.observed(date - Duration::days(1), name),
            Weekday::Sun => self.observed(date + Duration::days(1), name),
            _ => {}
        }
    }

    /// Saturday or Sunday → the next Monday.
    fn next_monday(&mut self, date: NaiveDate, name: &str) {
        match date.weekday() {
            Weekday::Sat => self.observed(date + Duration::days(2), name),
            Weekday::Sun => self.observed(date + Duration::days(1), name),
            _ => {}
        }
    }

    /// Christmas and the day after, each moved to the next free working day when it falls
    /// on a weekend (Saturday Christmas → Monday, Sunday Boxing Day → Tuesday).
    fn christmas_pair(&mut self, second: &str) {
        let christmas = self.fixed(12, 25, "Christmas Day");
        let boxing = self.fixed(12, 26, second);
        match christmas.weekday() {
            // Sat 25, Sun 26 → Mon 27, Tue 28.
            Weekday::Sat => {
                self.observed(ymd(self.year, 12, 27), "Christmas Day");
                self.observed(ymd(self.year, 12, 28), second);
            }
            // Sun 25, Mon 26 → Tue 27.
            Weekday::Sun => self.observed(ymd(self.year, 12, 27), "Christmas Day"),
            // Fri 25, Sat 26 → Mon 28.
            Weekday::Fri => self.observed(ymd(self.year, 12, 28), second),
            _ => {}
        }
        let _ = boxing;
    }
}

/// The national holidays of `country` (ISO code) in `year`, by date.
pub fn national(country_code: &str, year: i32) -> Result<Vec<Holiday>, HolidayError> {
    let c = country(country_code).ok_or_else(|| HolidayError::Country(country_code.into()))?;
    if !YEARS.contains(&year) {
        return Err(HolidayError::Year(year));
    }
    let mut cal = Calendar {
        year,
        days: Vec::new(),
    };
    match c.code {
        "US" => us(&mut cal),
        "CA" => ca(&mut cal),
        "GB" => gb(&mut cal),
        "IE" => ie(&mut cal),
        "DE" => de(&mut cal),
        "FR" => fr(&mut cal),
        "NL" => nl(&mut cal),
        "AU" => au(&mut cal),
        _ => return Err(HolidayError::Country(country_code.into())),
    }
    let mut days = cal.days;
    days.sort_by(|a, b| a.date.cmp(&b.date).then(a.name.cmp(&b.name)));
    days.dedup_by(|a, b| a.date == b.date);
    Ok(days)
}

/// United States, federal holidays (5 U.S.C. 6103) with their observed days.
fn us(c: &mut Calendar) {
    let y = c.year;
    let new_year = c.fixed(1, 1, "New Year's Day");
    c.us_observed(new_year, "New Year's Day");
    // Next year's New Year's Day on a Saturday is observed on this year's 31 December.
    c.us_observed(ymd(y + 1, 1, 1), "New Year's Day");
    c.add(
        nth_weekday(y, 1, Weekday::Mon, 3),
        "Martin Luther King Jr. Day",
    );
    c.add(nth_weekday(y, 2, Weekday::Mon, 3), "Washington's Birthday");
    c.add(last_weekday(y, 5, Weekday::Mon), "Memorial Day");
    let juneteenth = c.fixed(6, 19, "Juneteenth National Independence Day");
    c.us_observed(juneteenth, "Juneteenth National Independence Day");
    let independence = c.fixed(7, 4, "Independence Day");
    c.us_observed(independence, "Independence Day");
    c.add(nth_weekday(y, 9, Weekday::Mon, 1), "Labor Day");
    c.add(nth_weekday(y, 10, Weekday::Mon, 2), "Columbus Day");
    let veterans = c.fixed(11, 11, "Veterans Day");
    c.us_observed(veterans, "Veterans Day");
    c.add(nth_weekday(y, 11, Weekday::Thu, 4), "Thanksgiving Day");
    let christmas = c.fixed(12, 25, "Christmas Day");
    c.us_observed(christmas, "Christmas Day");
}

/// Canada, holidays observed in every province.
fn ca(c: &mut Calendar) {
    let y = c.year;
    let new_year = c.fixed(1, 1, "New Year's Day");
    c.next_monday(new_year, "New Year's Day");
    c.easter(-2, "Good Friday");
    // Canada Day has no substitute day nationally (provinces differ).
    c.fixed(7, 1, "Canada Day");
    c.add(nth_weekday(y, 9, Weekday::Mon, 1), "Labour Day");
    let christmas = c.fixed(12, 25, "Christmas Day");
    c.next_monday(christmas, "Christmas Day");
}

/// United Kingdom, bank holidays common to all four nations.
fn gb(c: &mut Calendar) {
    let y = c.year;
    let new_year = c.fixed(1, 1, "New Year's Day");
    c.next_monday(new_year, "New Year's Day");
    c.easter(-2, "Good Friday");
    c.add(nth_weekday(y, 5, Weekday::Mon, 1), "May Day");
    c.add(last_weekday(y, 5, Weekday::Mon), "Spring Bank Holiday");
    c.christmas_pair("Boxing Day");
}

/// Ireland, public holidays.
fn ie(c: &mut Calendar) {
    let y = c.year;
    c.fixed(1, 1, "New Year's Day");
    // First Monday of February, or 1 February when that is a Friday (since 2023).
    let feb1 = ymd(y, 2, 1);
    let brigid = if feb1.weekday() == Weekday::Fri {
        feb1
    } else {
        nth_weekday(y, 2, Weekday::Mon, 1)
    };
    c.add(brigid, "Saint Brigid's Day");
    c.fixed(3, 17, "Saint Patrick's Day");
    c.easter(1, "Easter Monday");
    c.add(nth_weekday(y, 5, Weekday::Mon, 1), "May Bank Holiday");
    c.add(nth_weekday(y, 6, Weekday::Mon, 1), "June Bank Holiday");
    c.add(nth_weekday(y, 8, Weekday::Mon, 1), "August Bank Holiday");
    c.add(last_weekday(y, 10, Weekday::Mon), "October Bank Holiday");
    c.fixed(12, 25, "Christmas Day");
    c.fixed(12, 26, "Saint Stephen's Day");
}

/// Germany, federal holidays.
fn de(c: &mut Calendar) {
    c.fixed(1, 1, "New Year's Day");
    c.easter(-2, "Good Friday");
    c.easter(1, "Easter Monday");
    c.fixed(5, 1, "Labor Day");
    c.easter(39, "Ascension Day");
    c.easter(50, "Pentecost Monday");
    c.fixed(10, 3, "German Unity Day");
    c.fixed(12, 25, "Christmas Day");
    c.fixed(12, 26, "Second Day of Christmas");
}

/// France (metropolitan), public holidays.
fn fr(c: &mut Calendar) {
    c.fixed(1, 1, "New Year's Day");
    c.easter(1, "Easter Monday");
    c.fixed(5, 1, "Labor Day");
    c.fixed(5, 8, "Victory Day");
    c.easter(39, "Ascension Day");
    c.easter(50, "Pentecost Monday");
    c.fixed(7, 14, "National Day");
    c.fixed(8, 15, "Assumption Day");
    c.fixed(11, 1, "All Saints' Day");
    c.fixed(11, 11, "Armistice Day");
    c.fixed(12, 25, "Christmas Day");
}

/// Netherlands, public holidays.
fn nl(c: &mut Calendar) {
    let y = c.year;
    c.fixed(1, 1, "New Year's Day");
    c.easter(-2, "Good Friday");
    c.easter(0, "Easter Sunday");
    c.easter(1, "Easter Monday");
    // King's Day, 27 April, or the 26th when the 27th is a Sunday.
    let kings = ymd(y, 4, 27);
    c.add(
        if kings.weekday() == Weekday::Sun {
            kings - Duration::days(1)
        } else {
            kings
        },
        "King's Day",
    );
    // Liberation Day is a day off every fifth year.
    if y % 5 == 0 {
        c.fixed(5, 5, "Liberation Day");
    }
    c.easter(39, "Ascension Day");
    c.easter(49, "Pentecost");
    c.easter(50, "Pentecost Monday");
    c.fixed(12, 25, "Christmas Day");
    c.fixed(12, 26, "Second Day of Christmas");
}

/// Australia, national public holidays.
fn au(c: &mut Calendar) {
    c.fixed(1, 1, "New Year's Day");
    c.fixed(1, 26, "Australia Day");
    c.easter(-2, "Good Friday");
    c.easter(1, "Easter Monday");
    c.fixed(4, 25, "ANZAC Day");
    c.fixed(12, 25, "Christmas Day");
    c.fixed(12, 26, "Boxing Day");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn dates(country: &str, year: i32) -> Vec<String> {
        national(country, year)
            .expect("supported")
            .iter()
            .map(|h| h.date.to_string())
            .collect()
    }

    #[test]
    fn easter_dates() {
        for (y, want) in [
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
            (2038, "2038-04-25"),
            (2285, "2285-03-22"),
        ] {
            assert_eq!(easter(y), d(want), "{y}");
        }
    }

    #[test]
    fn weekday_rules() {
        assert_eq!(nth_weekday(2026, 11, Weekday::Thu, 4), d("2026-11-26"));
        assert_eq!(last_weekday(2027, 5, Weekday::Mon), d("2027-05-31"));
        assert_eq!(last_weekday(2026, 12, Weekday::Thu), d("2026-12-31"));
    }

    #[test]
    fn us_2027_with_observed_days() {
        assert_eq!(
            dates("us", 2027),
            [
                "2027-01-01",
                "2027-01-18",
                "2027-02-15",
                "2027-05-31",
                "2027-06-18",
                "2027-06-19",
                "2027-07-04",
                "2027-07-05",
                "2027-09-06",
                "2027-10-11",
                "2027-11-11",
                "2027-11-25",
                "2027-12-24",
                "2027-12-25",
                "2027-12-31"
            ]
        );
        let h = national("US", 2027).expect("US");
        let last = h.last().expect("one");
        assert_eq!(last.name, "New Year's Day (observed)");
    }

    #[test]
    fn unknown_country_and_year_are_errors() {
        assert_eq!(
            national("XX", 2027),
            Err(HolidayError::Country("XX".into()))
        );
        assert_eq!(national("DE", 2023), Err(HolidayError::Year(2023)));
        assert_eq!(national("DE", 2100), Err(HolidayError::Year(2100)));
    }

    /// Every country and year of the python-holidays reference, date by date.
    #[test]
    fn matches_the_python_holidays_reference() {
        let reference: BTreeMap<String, BTreeMap<String, Vec<String>>> =
            serde_json::from_str(include_str!("../testdata/holidays-reference.json"))
                .expect("reference parses");
        assert_eq!(reference.len(), COUNTRIES.len());
        let mut years = 0;
        for (code, by_year) in &reference {
            for (year, want) in by_year {
                let year: i32 = year.parse().expect("year");
                assert_eq!(&dates(code, year), want, "{code} {year}");
                years += 1;
            }
        }
        assert!(years >= COUNTRIES.len() * 17, "{years}");
    }
}
