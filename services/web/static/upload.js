// Progressive enhancement of the proofs form (the plain form works without it):
// - each chosen file is checked at once, in the browser: its type (PDF, JPEG, PNG, HEIC) and its
//   size (10 Mo); a refused file is taken off the field with the reason next to it, before any
//   byte is sent;
// - the whole post is checked against the page's limit (40 Mo for all the files together);
// - the files are then sent with XMLHttpRequest so a <progress> bar shows how far it is, and the
//   status line (role="status") says it in words, by quarters so a screen reader is not flooded.
(function () {
  "use strict";
  if (!window.XMLHttpRequest || !window.FormData || !window.DOMParser) { return; }

  var TYPES = ["application/pdf", "image/jpeg", "image/png", "image/heic", "image/heif"];
  var EXTENSIONS = /\.(pdf|jpe?g|png|heic|heif)$/i;

  function megabytes(bytes) { return Math.round(bytes / 104857.6) / 10 + " Mo"; }

  function fileProblem(file, maxFile) {
    if (TYPES.indexOf(file.type) === -1 && !EXTENSIONS.test(file.name)) {
      return "« " + file.name + " » n'est ni un PDF ni une photo (JPEG, PNG, HEIC) : choisissez un autre fichier.";
    }
    if (file.size > maxFile) {
      return "« " + file.name + " » pèse " + megabytes(file.size) + " : 10 Mo au plus. Réduisez-le ou prenez une photo moins lourde.";
    }
    return null;
  }

  // The message of an error page (ours) for the first field in error, or the gateway's JSON detail.
  function errorOf(xhr) {
    var type = xhr.getResponseHeader("Content-Type") || "";
    try {
      if (type.indexOf("json") !== -1) { return JSON.parse(xhr.responseText).detail; }
      var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var found = page.querySelector(".error-summary li, .field-error, .notice--erreur, main p");
      if (found) { return found.textContent.replace(/^\s*Erreur :\s*/, "").trim(); }
    } catch (ignored) { /* fall through to the generic message */ }
    return "L'envoi a échoué. Réessayez dans quelques minutes.";
  }

  function fieldMessage(input) {
    var id = input.id + "-verification";
    var message = document.getElementById(id);
    if (!message) {
      message = document.createElement("p");
      message.id = id;
      message.className = "field-error";
      message.hidden = true;
      input.parentNode.insertBefore(message, input);
    }
    return message;
  }

  function checkField(input, maxFile) {
    var message = fieldMessage(input);
    var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (part) {
      return part && part !== message.id;
    });
    var problem = input.files && input.files.length ? fileProblem(input.files[0], maxFile) : null;
    message.textContent = problem || "";
    message.hidden = !problem;
    if (problem) {
      input.value = "";
      input.setAttribute("aria-invalid", "true");
      described.push(message.id);
    } else {
      input.removeAttribute("aria-invalid");
    }
    input.setAttribute("aria-describedby", described.join(" "));
    return problem;
  }

  function enhance(form) {
    var maxFile = Number(form.getAttribute("data-max-file")) || 10485760;
    var maxTotal = Number(form.getAttribute("data-max-total")) || 41943040;
    var inputs = Array.prototype.slice.call(form.querySelectorAll("input[data-file]"));
    var progress = form.querySelector("progress");
    var status = form.querySelector("[data-upload-status]");
    var button = form.querySelector("button[type=submit]");

    function say(text, failed) {
      status.textContent = text;
      status.classList.toggle("envoi-statut--erreur", Boolean(failed));
    }

    inputs.forEach(function (input) {
      input.addEventListener("change", function () {
        var problem = checkField(input, maxFile);
        if (problem) { say(problem, true); } else { say(""); }
      });
    });

    form.addEventListener("submit", function (event) {
      var chosen = inputs.filter(function (input) { return input.files && input.files.length; });
      if (chosen.length === 0) { return; } // the server says what is missing
      var total = chosen.reduce(function (sum, input) { return sum + input.files[0].size; }, 0);
      if (total > maxTotal) {
        event.preventDefault();
        say("Les fichiers choisis pèsent " + megabytes(total) + " à eux tous : 40 Mo au plus par envoi. Envoyez-les en plusieurs fois.", true);
        return;
      }
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      var announced = -1;
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) { return; }
        var percent = Math.floor((e.loaded * 100) / e.total);
        progress.value = percent;
        var quarter = Math.floor(percent / 25) * 25;
        if (quarter !== announced) {
          announced = quarter;
          say(quarter === 100 ? "Fichiers reçus, vérification en cours…" : "Envoi en cours : " + quarter + " %");
        }
      });
      xhr.addEventListener("load", function () {
        var next = xhr.getResponseHeader("Location");
        if (xhr.status >= 200 && xhr.status < 300 && next) {
          say("Documents envoyés. Mise à jour de la page…");
          window.location.assign(next);
          return;
        }
        progress.hidden = true;
        button.disabled = false;
        say(errorOf(xhr), true);
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
    var form = document.getElementById("envoi-pieces");
    if (form) { enhance(form); }
  });
}());
