// The case page's signature dialogs: a button opens its <dialog> (modal, so the rest of the page waits),
// Cancel closes it without sending anything.  The form inside posts like any other; nothing is kept here.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    const opener = event.target.closest("button.open-signature");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.dialog);
      if (dialog) dialog.showModal();
      return;
    }
    const closer = event.target.closest("button.close-dialog");
    if (closer) closer.closest("dialog").close();
  });
})();
