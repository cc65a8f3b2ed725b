//! The web UI's extra-network tags in a prompt: `<lora:NAME>` or `<lora:NAME:MULTIPLIER>`
//! merge the LoRA file `NAME` with that multiplier (default 1) and are removed from the text
//! the encoder sees, as AUTOMATIC1111's `modules/extra_networks.py` parses them (the pattern
//! `<(\w+):([^>]+)>`, arguments split on `:`).
//!
//! The pattern is matched by hand: one fixed shape does not warrant a regular-expression
//! engine in this crate.

use crate::SdError;

/// A LoRA named in a prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptLora {
    /// The file's name without `.safetensors`, as the tag spells it.
    pub name: String,
    /// Its multiplier (the web UI's `te`/`unet` multiplier when both are the same).
    pub multiplier: f64,
}

/// A tag `<KIND:ARGS>` starting at `text`'s beginning: its kind, arguments and length in bytes.
fn tag_at(text: &str) -> Option<(&str, &str, usize)> {
    let rest = text.strip_prefix('<')?;
    let kind_len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    let (kind, after) = rest.split_at(kind_len);
    let args_and_more = after.strip_prefix(':')?;
    let args_len = args_and_more.find('>')?;
    (kind_len > 0 && args_len > 0).then(|| (kind, &args_and_more[..args_len], 1 + kind_len + 1 + args_len + 1))
}

/// `prompt` without its extra-network tags, and the LoRAs they name. Other kinds of extra
/// network (hypernetworks, …) and LoRA tags whose multiplier is not a number, or that give the
/// text encoder and the U-Net different multipliers, are errors that say what is accepted.
pub fn extract_loras(prompt: &str) -> Result<(String, Vec<PromptLora>), SdError> {
    let (mut text, mut loras) = (String::with_capacity(prompt.len()), Vec::new());
    let mut rest = prompt;
    while let Some(at) = rest.find('<') {
        text.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some((kind, args, len)) = tag_at(rest) else {
            text.push('<');
            rest = &rest[1..];
            continue;
        };
        if kind != "lora" {
            return Err(SdError::Invalid(format!("<{kind}:{args}>: the only extra network in prompts is <lora:NAME:MULTIPLIER>")));
        }
        loras.push(lora_args(args)?);
        rest = &rest[len..];
    }
    text.push_str(rest);
    Ok((text, loras))
}

/// The name and multiplier of `<lora:ARGS>`: `NAME`, `NAME:M` or `NAME:M:M`.
fn lora_args(args: &str) -> Result<PromptLora, SdError> {
    let bad = |why: &str| SdError::Invalid(format!("<lora:{args}>: {why} (expected <lora:NAME> or <lora:NAME:MULTIPLIER>, e.g. <lora:style:0.8>)"));
    let mut parts = args.split(':');
    let name = parts.next().unwrap_or_default().trim();
    if name.is_empty() {
        return Err(bad("no name"));
    }
    let multipliers = parts.map(|m| m.trim().parse::<f64>().ok().filter(|m| m.is_finite())).collect::<Option<Vec<_>>>().ok_or_else(|| bad("the multiplier is not a number"))?;
    let multiplier = match multipliers.as_slice() {
        [] => 1.0,
        [m] => *m,
        [te, unet] if te == unet => *te,
        [_, _] => return Err(bad("separate text-encoder and U-Net multipliers are not supported")),
        _ => return Err(bad("too many arguments")),
    };
    Ok(PromptLora { name: name.to_string(), multiplier })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lora(name: &str, multiplier: f64) -> PromptLora {
        PromptLora { name: name.into(), multiplier }
    }

    #[test]
    fn tags_are_taken_out_of_the_text_as_the_web_ui_does() {
        let (text, loras) = extract_loras("a castle <lora:ink_style:0.8>, (sunset:1.2) <lora:detail>").unwrap();
        assert_eq!(text, "a castle , (sunset:1.2) ");
        assert_eq!(loras, vec![lora("ink_style", 0.8), lora("detail", 1.0)]);
        let (text, loras) = extract_loras("<lora:a:-0.5:-0.5>x").unwrap();
        assert_eq!((text.as_str(), loras), ("x", vec![lora("a", -0.5)]));
    }

    #[test]
    fn angle_brackets_that_are_no_tag_stay_in_the_text() {
        for p in ["a < b > c", "<lora>", "<:x>", "<lora:>", "heart <3", "<lora:x"] {
            assert_eq!(extract_loras(p).unwrap(), (p.to_string(), vec![]), "{p}");
        }
    }

    #[test]
    fn tags_that_cannot_be_honoured_are_errors() {
        for (p, says) in [
            ("<hypernet:x:1>", "only extra network"),
            ("<lora:x:strong>", "not a number"),
            ("<lora:x:0.5:1>", "separate text-encoder"),
            ("<lora:x:1:1:1>", "too many"),
            ("<lora: :1>", "no name"),
            ("<lora:x:NaN>", "not a number"),
        ] {
            let e = extract_loras(p).unwrap_err().to_string();
            assert!(e.contains(says), "{p}: {e}");
        }
    }
}
