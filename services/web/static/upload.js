// Progressive enhancement of the proof upload forms (the plain forms work without it): the file
// is sent with XMLHttpRequest so a <progress> bar shows how far it is, and the status line (a
// role="status" live region) says it in words. Announcements go by quarters, not every event,
// so a screen reader is not flooded.
(function () {
  "use strict";
  if (!window.XMLHttpRequest || !window.FormData || !window.DOMParser) { return; }

  // The page's message for this form's file field in an error page (our pages), or the JSON
  // detail (the gateway's 413 for a file over its limit).
  function errorOf(xhr, fieldId) {
    var type = xhr.getResponseHeader("Content-Type") || "";
    try {
      if (type.indexOf("json") !== -1) { return JSON.parse(xhr.responseText).detail; }
      var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var found = page.getElementById(fieldId + "-erreur") || page.querySelector(".error-summary li, .notice--erreur, main p");
      if (found) { return found.textContent.replace(/^\s*Erreur :\s*/, "").trim(); }
    } catch (ignored) { /* fall through to the generic message */ }
    return "L'envoi a échoué. Réessayez dans quelques minutes.";
  }

  function enhance(form) {
    var fieldId = form.getAttribute("data-upload");
    var progress = form.querySelector("progress");
    var status = form.querySelector("[data-upload-status]");
    var button = form.querySelector("button[type=submit]");
    var file = document.getElementById(fieldId);

    function say(text, failed) {
      status.textContent = text;
      status.classList.toggle("envoi-statut--erreur", Boolean(failed));
    }

    form.addEventListener("submit", function (event) {
      if (!file || !file.files || file.files.length === 0) { return; } // the server says what is missing
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      var announced = -1;
      xhr.open("POST", form.action);
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) { return; }
        var percent = Math.floor((e.loaded * 100) / e.total);
        progress.value = percent;
        var quarter = Math.floor(percent / 25) * 25;
        if (quarter !== announced) {
          announced = quarter;
          say(quarter === 100 ? "Fichier reçu, vérification en cours…" : "Envoi en cours : " + quarter + " %");
        }
      });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) {
          say("Document envoyé. Mise à jour de la page…");
          // The server redirected to the page with its confirmation: show that page.
          window.location.assign(xhr.responseURL || form.action);
          return;
        }
        progress.hidden = true;
        button.disabled = false;
        say(errorOf(xhr, fieldId), true);
      });
      xhr.addEventListener("error", function () {
        progress.hidden = true;
        button.disabled = false;
        say("L'envoi a échoué : vérifiez votre connexion internet puis réessayez.", true);
      });
      progress.value = 0;
      progress.hidden = false;
      button.disabled = true;
      say("Envoi en cours : 0 %");
      xhr.send(new FormData(form));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-upload]"), enhance);
  });
}());
