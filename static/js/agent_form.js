// The agent form: add/remove skill and secret rows, the bundled example skill, and the
// secret "replace" field that only shows when asked for.
(function () {
  "use strict";
  var skills = document.getElementById("skills");
  var secrets = document.getElementById("secrets");
  var noSkills = document.getElementById("no-skills");

  function addFromTemplate(id, container) {
    var node = document.getElementById(id).content.firstElementChild.cloneNode(true);
    container.appendChild(node);
    return node;
  }
  function syncEmpty() { noSkills.hidden = skills.children.length > 0; }

  document.getElementById("add-skill").addEventListener("click", function () {
    addFromTemplate("skill-template", skills).querySelector("input").focus();
    syncEmpty();
  });
  var example = document.getElementById("add-example-skill");
  if (example) {
    example.addEventListener("click", function () {
      var skill = JSON.parse(document.getElementById("example-skill").textContent);
      var taken = Array.prototype.some.call(skills.querySelectorAll('[name="skill_name"]'), function (i) { return i.value === skill.name; });
      if (taken) return;
      var row = addFromTemplate("skill-template", skills);
      row.querySelector('[name="skill_name"]').value = skill.name;
      row.querySelector('[name="skill_description"]').value = skill.description;
      row.querySelector('[name="skill_body"]').value = skill.body;
      syncEmpty();
    });
  }
  document.getElementById("add-secret").addEventListener("click", function () {
    addFromTemplate("secret-template", secrets).querySelector("input").focus();
  });
  document.getElementById("agent-form").addEventListener("click", function (event) {
    if (!event.target.classList.contains("remove-row")) return;
    event.target.closest(".skill-row, .secret-row").remove();
    syncEmpty();
  });
  secrets.addEventListener("change", function (event) {
    if (!event.target.classList.contains("secret-action")) return;
    var row = event.target.closest(".secret-row");
    var value = row.querySelector(".secret-value");
    value.hidden = event.target.value !== "replace";
    row.classList.toggle("removing", event.target.value === "remove");
    if (!value.hidden) value.focus();
  });
})();
