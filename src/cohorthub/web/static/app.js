// Copy buttons: <button data-copy="element-id">.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const text = document.getElementById(button.dataset.copy).textContent.trim();
  navigator.clipboard.writeText(text).then(() => { button.setAttribute("aria-label", button.textContent + " ✓"); });
});

// Fields that only matter for one choice: <fieldset data-when="type=delay|message"> is hidden unless
// the form's control `type` has one of those values. Without JavaScript every field shows.
function syncChoices(form) {
  form.querySelectorAll("[data-when]").forEach((el) => {
    const [name, values] = el.dataset.when.split("=");
    const control = form.elements[name];
    if (control) el.hidden = !values.split("|").includes(control.value);
  });
}
document.addEventListener("change", (event) => { if (event.target.form) syncChoices(event.target.form); });
document.addEventListener("DOMContentLoaded", () => document.querySelectorAll("form").forEach(syncChoices));
