// Errors next to the controls they concern. Each control sits in an element whose
// `data-field` is the API's name for it; the API's `field` (or, for training settings, the
// setting named at the start of the message) picks the control, and the message goes in the
// field's `.error` line. An error no control claims goes in the form's general error line.

/** Library names that a control of another name stands for. */
const ALIASES = { prompts: "prompt", image: "init_image", negative_class: "class" };

export function clearErrors(form) {
  for (const p of form.querySelectorAll(".error")) p.textContent = "";
  for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
}

function fieldElement(form, name) {
  if (!name) return null;
  const wanted = ALIASES[name] || name;
  return form.querySelector(`[data-field="${CSS.escape(wanted)}"]`);
}

/** Shows `message` next to the control named `field` in `form` (or in its general line). */
export function showError(form, field, message) {
  let target = fieldElement(form, field);
  // Training settings fail as field "settings" with the setting first: "lr: must be …".
  if (field === "settings") target = fieldElement(form, message.split(":")[0].trim()) || target;
  const line = target ? target.querySelector(".error") : form.querySelector(".form-error");
  line.textContent = message;
  const control = target && target.querySelector("input, select, textarea");
  if (control) {
    control.setAttribute("aria-invalid", "true");
    control.focus();
  }
}

/** A number input's value, or undefined when it is empty (the server's default). */
export function numberOf(input) {
  return input.value.trim() === "" ? undefined : Number(input.value);
}

/** A text input's trimmed value, or undefined when it is empty. */
export function textOf(input) {
  const v = input.value.trim();
  return v === "" ? undefined : v;
}
