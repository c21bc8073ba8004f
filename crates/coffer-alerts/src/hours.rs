//! A tenant's working hours and the detector of activity outside them.
//!
//! Text form: `DAYS HH:MM-HH:MM ±HH:MM`, e.g. `Mon-Fri 08:00-18:00 +00:00`; days are a range
//! (`Mon-Fri`, wrapping ranges like `Sat-Mon` allowed), a comma list (`Mon,Wed,Fri`) or a
//! mix; the end may be `24:00`; the start must be before the end (no overnight shifts); the
//! offset is at most 14 hours either way. Times are the local times at that UTC offset.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{AlertKind, Finding, Severity, Subject};

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// When a tenant works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkingHours {
    /// Bit `d` set: weekday `d` (0 = Monday) is a working day.
    pub days: u8,
    /// Start, minutes after local midnight (inclusive).
    pub start_minute: u16,
    /// End, minutes after local midnight (exclusive, at most 1440).
    pub end_minute: u16,
    /// The local time's offset from UTC in minutes.
    pub utc_offset_minutes: i16,
}

/// Why a working-hours text was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HoursError {
    /// Not three space-separated parts.
    #[error("working hours must look like \"Mon-Fri 08:00-18:00 +00:00\"")]
    Shape,
    /// An unknown day name.
    #[error("unknown day {0:?} (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")]
    Day(String),
    /// A time that is not HH:MM.
    #[error("bad time {0:?} (HH:MM, 00:00 to 24:00)")]
    Time(String),
    /// Start not before end.
    #[error("the start must be before the end")]
    Empty,
    /// An offset that is not ±HH:MM within 14 hours.
    #[error("bad UTC offset {0:?} (+HH:MM or -HH:MM, at most 14:00)")]
    Offset(String),
}

fn clip(s: &str) -> String {
    s.chars().take(16).collect()
}

fn day(s: &str) -> Result<u8, HoursError> {
    DAY_NAMES
        .iter()
        .position(|d| d.eq_ignore_ascii_case(s))
        .map(|i| i as u8)
        .ok_or_else(|| HoursError::Day(clip(s)))
}

fn hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

impl FromStr for WorkingHours {
    type Err = HoursError;

    fn from_str(s: &str) -> Result<Self, HoursError> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [days_s, times_s, offset_s] = parts[..] else {
            return Err(HoursError::Shape);
        };
        let mut days = 0u8;
        for item in days_s.split(',') {
            match item.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (day(a)?, day(b)?);
                    let mut d = a;
                    loop {
                        days |= 1 << d;
                        if d == b {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                None => days |= 1 << day(item)?,
            }
        }
        let (a, b) = times_s
            .split_once('-')
            .ok_or_else(|| HoursError::Time(clip(times_s)))?;
        let start = hhmm(a).ok_or_else(|| HoursError::Time(clip(a)))?;
        let end = hhmm(b).ok_or_else(|| HoursError::Time(clip(b)))?;
        if start >= end {
            return Err(HoursError::Empty);
        }
        let bad_offset = || HoursError::Offset(clip(offset_s));
        let (sign, rest) = match offset_s.as_bytes().first() {
            Some(b'+') => (1i16, &offset_s[1..]),
            Some(b'-') => (-1i16, &offset_s[1..]),
            _ => return Err(bad_offset()),
        };
        let off = hhmm(rest)
            .filter(|m| *m <= 14 * 60)
            .ok_or_else(bad_offset)?;
        Ok(WorkingHours {
            days,
            start_minute: start,
            end_minute: end,
            utc_offset_minutes: sign * off as i16,
        })
    }
}

impl fmt::Display for WorkingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = (0..7)
            .filter(|d| self.days & (1 << d) != 0)
            .map(|d| DAY_NAMES[d])
            .collect();
        let sign = if self.utc_offset_minutes < 0 {
            '-'
        } else {
            '+'
        };
        let off = self.utc_offset_minutes.unsigned_abs();
        write!(
            f,
            "{} {:02}:{:02}-{:02}:{:02} {sign}{:02}:{:02}",
            names.join(","),
            self.start_minute / 60,
            self.start_minute % 60,
            self.end_minute / 60,
            self.end_minute % 60,
            off / 60,
            off % 60
        )
    }
}

impl Serialize for WorkingHours {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WorkingHours {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl WorkingHours {
    /// Whether Unix time `at` (seconds) falls inside the working hours.
    pub fn contains(&self, at: u64) -> bool {
        let local = at as i64 + i64::from(self.utc_offset_minutes) * 60;
        let days_since_epoch = local.div_euclid(86_400);
        // 1970-01-01 was a Thursday (3 with Monday = 0).
        let weekday = (days_since_epoch + 3).rem_euclid(7) as u8;
        let minute = (local.rem_euclid(86_400) / 60) as u16;
        self.days & (1 << weekday) != 0 && minute >= self.start_minute && minute < self.end_minute
    }
}

/// Fires (Medium) when `action` happened at `at` outside `hours`.
pub fn outside_working_hours(
    subject: &Subject,
    hours: &WorkingHours,
    at: u64,
    action: &str,
) -> Option<Finding> {
    if hours.contains(at) {
        return None;
    }
    Some(Finding {
        kind: AlertKind::OutsideWorkingHours,
        severity: Severity::Medium,
        explanation: format!("{action} outside the tenant's working hours ({hours})"),
        evidence: json!({"at": at, "working_hours": hours.to_string(), "action": action}),
        subject: subject.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Monday 2024-01-01 00:00:00 UTC.
    const MONDAY: u64 = 1_704_067_200;

    fn at(day: u64, h: u64, m: u64) -> u64 {
        MONDAY + day * 86_400 + h * 3600 + m * 60
    }

    #[test]
    fn parses_the_usual_form_and_prints_it_back() {
        let w: WorkingHours = "Mon-Fri 08:00-18:00 +00:00".parse().unwrap();
        assert_eq!(w.days, 0b0001_1111);
        assert_eq!((w.start_minute, w.end_minute), (480, 1080));
        assert_eq!(w.to_string(), "Mon,Tue,Wed,Thu,Fri 08:00-18:00 +00:00");
        let x: WorkingHours = "Sat-Mon,Wed 00:00-24:00 -05:30".parse().unwrap();
        assert_eq!(x.days, 0b110_0101);
        assert_eq!(x.utc_offset_minutes, -330);
        assert_eq!(x.to_string().parse::<WorkingHours>().unwrap(), x);
        let json = serde_json::to_string(&x).unwrap();
        assert_eq!(serde_json::from_str::<WorkingHours>(&json).unwrap(), x);
    }

    #[test]
    fn refuses_malformed_texts_with_the_reason() {
        let e = |s: &str| s.parse::<WorkingHours>().unwrap_err();
        assert_eq!(e("Mon-Fri 08:00-18:00"), HoursError::Shape);
        assert_eq!(
            e("Mon-Fry 08:00-18:00 +00:00"),
            HoursError::Day("Fry".into())
        );
        assert_eq!(e("Mon 8:00-18:00 +00:00"), HoursError::Time("8:00".into()));
        assert_eq!(
            e("Mon 08:00-24:01 +00:00"),
            HoursError::Time("24:01".into())
        );
        assert_eq!(e("Mon 18:00-08:00 +00:00"), HoursError::Empty);
        assert_eq!(e("Mon 08:00-08:00 +00:00"), HoursError::Empty);
        assert_eq!(
            e("Mon 08:00-18:00 +14:01"),
            HoursError::Offset("+14:01".into())
        );
        assert_eq!(
            e("Mon 08:00-18:00 01:00"),
            HoursError::Offset("01:00".into())
        );
        assert_eq!(e(""), HoursError::Shape);
    }

    #[test]
    fn boundaries_are_start_inclusive_end_exclusive_on_working_days_only() {
        let w: WorkingHours = "Mon-Fri 08:00-18:00 +00:00".parse().unwrap();
        let s = Subject::default();
        assert!(outside_working_hours(&s, &w, at(0, 7, 59), "a request").is_some());
        assert!(outside_working_hours(&s, &w, at(0, 8, 0), "a request").is_none());
        assert!(outside_working_hours(&s, &w, at(4, 17, 59), "a request").is_none());
        assert!(outside_working_hours(&s, &w, at(4, 18, 0), "a request").is_some());
        let f = outside_working_hours(&s, &w, at(5, 12, 0), "a request").unwrap();
        assert_eq!(f.kind, AlertKind::OutsideWorkingHours);
        assert_eq!(f.evidence["at"], at(5, 12, 0));
    }

    #[test]
    fn the_offset_shifts_the_local_day_and_time() {
        // 23:30 UTC on Sunday is 09:30 on Monday at +10:00.
        let w: WorkingHours = "Mon 09:00-10:00 +10:00".parse().unwrap();
        assert!(w.contains(at(6, 23, 30)));
        assert!(!w.contains(at(0, 9, 30)));
        let west: WorkingHours = "Fri 20:00-21:00 -05:00".parse().unwrap();
        assert!(
            west.contains(at(5, 1, 30)),
            "Sat 01:30 UTC is Fri 20:30 at -05:00"
        );
    }

    proptest! {
        #[test]
        fn display_and_parse_round_trip(days in 1u8..128, a in 0u16..1440, len in 1u16..1440, off in -840i16..=840) {
            let end = (a + len).min(1440);
            prop_assume!(a < end);
            let w = WorkingHours { days, start_minute: a, end_minute: end, utc_offset_minutes: off };
            prop_assert_eq!(w.to_string().parse::<WorkingHours>().unwrap(), w);
        }
    }
}
