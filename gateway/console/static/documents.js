/* The case page's upload form, with a progress bar: the same POST the form makes without script, sent with
   XMLHttpRequest so that its upload progress events can be shown. Served by the console (its CSP allows scripts
   from 'self' only, never inline). On success the case page is loaded again; on a refusal the console's answer
   page (which says why) replaces this one. */
(function () {
  "use strict";
  var form = document.getElementById("document-upload");
  if (!form || !window.XMLHttpRequest || !window.FormData) {
    return;
  }
  var progress = document.getElementById("document-progress");
  var status = document.getElementById("document-status");
  var button = form.querySelector("button[type=submit]");

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Console-Upload", "1");
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) {
        return;
      }
      var percent = Math.round((e.loaded * 100) / e.total);
      progress.hidden = false;
      progress.value = percent;
      status.textContent = form.dataset.uploading.replace("{percent}", String(percent));
    });
    xhr.addEventListener("load", function () {
      if (xhr.status === 204) {
        window.location.assign(form.dataset.back);
        return;
      }
      var page = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
      if (page.body && page.body.children.length) {
        document.body.replaceWith(document.adoptNode(page.body));
      } else {
        status.textContent = form.dataset.failed;
        button.disabled = false;
      }
    });
    xhr.addEventListener("error", function () {
      status.textContent = form.dataset.failed;
      button.disabled = false;
    });
    button.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    xhr.send(new FormData(form));
  });
})();
