//! Sampler and schedule names as the web UIs (AUTOMATIC1111, Forge, their API clients) send
//! them, read from the one registry table: display names ("DPM++ 2M"), the older combined
//! form with a schedule ("DPM++ 2M Karras"), `k_`-aliases ("k_dpmpp_2m", "k_euler_a") and
//! Stipple's own names, case-insensitively.

use stipple_math::SigmaSchedule;

use crate::SamplerKind;

/// The web UI's alias of a sampler: `k_` and the k-diffusion function name, with
/// "ancestral" shortened to "a" (`k_euler_a`, `k_dpm_2_a`, `k_dpmpp_2s_a`).
pub fn webui_alias(kind: SamplerKind) -> String {
    format!("k_{}", kind.name().replace("_ancestral", "_a"))
}

/// A sampler name from a web-UI client, and the schedule its name carries when it is the
/// combined form ("DPM++ 2M Karras"); `None` when no sampler has that name.
pub fn parse_webui_sampler(name: &str) -> Option<(SamplerKind, Option<SigmaSchedule>)> {
    let n = name.trim();
    let plain = |s: &str| {
        SamplerKind::ALL
            .into_iter()
            .find(|k| k.display_name().eq_ignore_ascii_case(s) || k.name().eq_ignore_ascii_case(s) || webui_alias(*k).eq_ignore_ascii_case(s))
    };
    if let Some(k) = plain(n) {
        return Some((k, None));
    }
    let (head, tail) = n.rsplit_once(' ')?;
    let schedule = SigmaSchedule::ALL.into_iter().find(|s| s.display_name().eq_ignore_ascii_case(tail))?;
    plain(head).map(|k| (k, Some(schedule)))
}

/// The schedules of the web UI's "Schedule type" (`scheduler`) menu: `Ok(None)` for
/// "automatic" (the sampler's usual schedule), `Err(())` for a name Stipple does not have.
#[allow(clippy::result_unit_err)]
pub fn parse_webui_schedule(name: &str) -> Result<Option<SigmaSchedule>, ()> {
    let n = name.trim().to_ascii_lowercase().replace(' ', "_");
    match n.as_str() {
        "automatic" | "" => Ok(None),
        "ddim" => Ok(Some(SigmaSchedule::DdimUniform)),
        other => SigmaSchedule::ALL
            .into_iter()
            .find(|s| s.name() == other || s.display_name().eq_ignore_ascii_case(name.trim()))
            .map(Some)
            .ok_or(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_ui_names_map_to_samplers_and_schedules() {
        assert_eq!(parse_webui_sampler("Euler a"), Some((SamplerKind::EulerAncestral, None)));
        assert_eq!(parse_webui_sampler("k_euler_a"), Some((SamplerKind::EulerAncestral, None)));
        assert_eq!(parse_webui_sampler("DPM++ 2M Karras"), Some((SamplerKind::Dpmpp2m, Some(SigmaSchedule::Karras))));
        assert_eq!(parse_webui_sampler("dpmpp_2m_sde"), Some((SamplerKind::Dpmpp2mSde, None)));
        assert_eq!(parse_webui_sampler("DPM++ 2M SDE Exponential"), Some((SamplerKind::Dpmpp2mSde, Some(SigmaSchedule::Exponential))));
        assert_eq!(parse_webui_sampler("Restart"), None);
        assert_eq!(parse_webui_schedule("Automatic"), Ok(None));
        assert_eq!(parse_webui_schedule("karras"), Ok(Some(SigmaSchedule::Karras)));
        assert_eq!(parse_webui_schedule("sgm_uniform"), Ok(Some(SigmaSchedule::SgmUniform)));
        assert_eq!(parse_webui_schedule("SGM Uniform"), Ok(Some(SigmaSchedule::SgmUniform)));
        assert_eq!(parse_webui_schedule("align_your_steps"), Err(()));
        for k in SamplerKind::ALL {
            assert_eq!(parse_webui_sampler(k.display_name()), Some((k, None)), "{k}");
            assert_eq!(parse_webui_sampler(&webui_alias(k)), Some((k, None)), "{k}");
        }
    }
}
