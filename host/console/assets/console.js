// The console works without this file; it only adds "select all" to the
// bulk form of the leads list.
document.addEventListener("change", function (e) {
  if (e.target && e.target.id === "select-all") {
    var boxes = document.querySelectorAll('#bulk input[name="key"]');
    for (var i = 0; i < boxes.length; i++) { boxes[i].checked = e.target.checked; }
  }
});
