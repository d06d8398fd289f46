// Progressive enhancement only (the pages work without it): move keyboard and screen reader
// focus to a form's error summary, so the user hears what to correct first.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.getElementById("resume-erreurs");
  if (summary) { summary.focus(); }
});
