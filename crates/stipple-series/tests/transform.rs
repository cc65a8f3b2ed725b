//! Series transforms (log, differences) and their inverse on forecast paths: round trips on
//! real data, hand-checked integrations, gaps, and the errors a user meets.

use stipple_series::{SeriesError, SeriesTransform};

/// The first four years of the airline passengers series (Box & Jenkins, series G, thousands
/// per month, 1949–1952), as in `scripts/timeseries.sh`'s airline.csv.
const AIRLINE: [f64; 48] = [
    112., 118., 132., 129., 121., 135., 148., 148., 136., 119., 104., 118., //
    115., 126., 141., 135., 125., 149., 170., 170., 158., 133., 114., 140., //
    145., 150., 178., 163., 172., 178., 199., 199., 184., 162., 146., 166., //
    171., 180., 193., 181., 183., 218., 230., 242., 209., 191., 172., 194.,
];

fn transform(log: bool, differences: &[usize]) -> SeriesTransform {
    SeriesTransform { log, differences: differences.to_vec() }
}

/// Transforming the whole series and inverting its last `m` values from the history alone
/// (the last `h` rows hidden) gives the series back: the hidden rows to 1e-12 of their size
/// (integration and exp round), the others exactly.
#[test]
fn inverting_the_transformed_series_gives_it_back() {
    let (m, h) = (24, 12);
    for t in [transform(true, &[]), transform(false, &[1]), transform(false, &[12]), transform(true, &[12]), transform(true, &[1, 12])] {
        let y = t.apply(&AIRLINE).unwrap();
        assert_eq!(y.len(), AIRLINE.len() - t.consumed(), "{}", t.describe());
        let mut observed: Vec<Option<f64>> = AIRLINE.iter().copied().map(Some).collect();
        for v in &mut observed[AIRLINE.len() - h..] {
            *v = None;
        }
        let back = t.invert(&observed, &y[y.len() - m..]).unwrap();
        let want = &AIRLINE[AIRLINE.len() - m..];
        assert_eq!(back[..m - h], want[..m - h], "observed rows are kept exactly ({})", t.describe());
        for (a, b) in back[m - h..].iter().zip(&want[m - h..]) {
            assert!((a - b).abs() <= 1e-12 * b.abs(), "{}: {a} against {b}", t.describe());
        }
    }
}

#[test]
fn the_transformed_series_is_the_literature_s() {
    // The seasonal difference of the logs (the airline model's ∇₁₂ log x_t) at its first row.
    let y = transform(true, &[12]).apply(&AIRLINE).unwrap();
    assert_eq!(y[0], 115f64.ln() - 112f64.ln());
    // ∇∇₁₂ x: the first difference of the seasonal difference.
    let y = transform(false, &[12, 1]).apply(&AIRLINE).unwrap();
    assert_eq!(y.len(), 48 - 13);
    assert_eq!(y[0], (126. - 118.) - (115. - 112.));
}

/// Forecast paths integrated by hand.
#[test]
fn forecast_paths_are_integrated_from_the_last_observed_values() {
    // Seasonal difference at lag 3: each future value is the one three rows before plus the
    // path's difference.
    let observed = [Some(10.), Some(12.), Some(15.), Some(11.), Some(13.), Some(16.), None, None, None];
    let back = transform(false, &[3]).invert(&observed, &[2., 3., 4.]).unwrap();
    assert_eq!(back, [13., 16., 20.]);
    // Further than one season ahead, from the rebuilt values.
    let observed = [Some(10.), Some(12.), Some(15.), None, None, None, None];
    assert_eq!(transform(false, &[3]).invert(&observed, &[1., 1., 1., 5.]).unwrap(), [11., 13., 16., 16.]);
    // Log and first difference: growth factors. x = 4 · 3, then 12 · 0.5.
    let observed = [Some(1.), Some(2.), Some(4.), None, None];
    let back = transform(true, &[1]).invert(&observed, &[3f64.ln(), 0.5f64.ln()]).unwrap();
    assert!((back[0] - 12.).abs() < 1e-12 && (back[1] - 6.).abs() < 1e-12, "{back:?}");
    // Two first differences (a quadratic's constant second difference): 11 + 5, then 16 + 6.
    let observed = [Some(1.), Some(2.), Some(4.), Some(7.), Some(11.), None, None];
    assert_eq!(transform(false, &[1, 1]).apply(&[1., 2., 4., 7., 11.]).unwrap(), [1., 1., 1.]);
    assert_eq!(transform(false, &[1, 1]).invert(&observed, &[1., 1.]).unwrap(), [16., 22.]);
}

/// Where the transformed value is known, the path's is not used; gaps inside the window are
/// rebuilt from the path.
#[test]
fn observed_values_are_kept_and_gaps_rebuilt() {
    let t = transform(false, &[1]);
    let observed = [Some(10.), Some(12.), None, Some(11.), None];
    // Rows 1..5: the difference at row 1 is known (2), so the path's 1e9 there is unused.
    let back = t.invert(&observed, &[1e9, 0.5, 7., -1.5]).unwrap();
    assert_eq!(back, [12., 12.5, 11., 9.5]);
    assert_eq!(t.apply_observed(&observed).unwrap(), [None, Some(2.), None, None, None]);
    // A row before the path that an integration needs is missing.
    let gap = [Some(1.), None, Some(5.), None];
    let e = transform(false, &[2]).invert(&gap, &[0.]).unwrap_err();
    assert_eq!(e, SeriesError::MissingBefore { index: 3, needed: 1 });
    assert!(e.to_string().contains("needs the value at index 1, which is missing"), "{e}");
}

#[test]
fn bad_input_is_refused_with_what_was_expected() {
    let e = transform(true, &[]).apply(&[3., 0., 2.]).unwrap_err();
    assert_eq!(e, SeriesError::NotPositive { index: 1, value: 0. });
    assert!(e.to_string().contains("value 0 at index 1 (0-based) is not positive"), "{e}");
    assert!(matches!(transform(true, &[]).apply_observed(&[Some(1.), None, Some(-2.)]), Err(SeriesError::NotPositive { index: 2, .. })));
    let e = transform(false, &[12]).apply(&AIRLINE[..12]).unwrap_err();
    assert_eq!(e, SeriesError::TooShort { what: "the differences at these lags (their sum, then one value)", needed: 13, got: 12 });
    assert!(transform(false, &[12, 0]).validate().unwrap_err().to_string().contains("lags of at least 1"));
    assert!(transform(false, &[0]).apply(&AIRLINE).is_err());
    let observed = [Some(1.), Some(2.), None];
    assert!(matches!(transform(false, &[1]).invert(&observed, &[0., 0., 0.]), Err(SeriesError::TooShort { needed: 4, got: 3, .. })));
}

#[test]
fn the_identity_and_its_descriptions() {
    let none = SeriesTransform::default();
    assert!(none.is_identity() && none.consumed() == 0 && none.describe() == "none");
    assert_eq!(none.apply(&AIRLINE).unwrap(), AIRLINE);
    let observed = [Some(1.), None];
    assert_eq!(none.invert(&observed, &[5., 7.]).unwrap(), [1., 7.]);
    let t = transform(true, &[1, 12]);
    assert_eq!((t.consumed(), t.describe().as_str()), (13, "log, difference at lag 1, difference at lag 12"));
    // Its JSON (a model file's `series.transform`); absent fields are no transform.
    let json = serde_json::to_string(&t).unwrap();
    assert_eq!(json, r#"{"log":true,"differences":[1,12]}"#);
    assert_eq!(serde_json::from_str::<SeriesTransform>(&json).unwrap(), t);
    assert_eq!(serde_json::from_str::<SeriesTransform>("{}").unwrap(), none);
    assert!(serde_json::from_str::<SeriesTransform>(r#"{"boxcox": 0.5}"#).is_err(), "an unknown transform is refused");
}
