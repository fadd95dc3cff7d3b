"use strict";
// Lifecycle rules as both the lifecycle page and the bucket settings dialog show them: the
// templates users start from, a rule's actions in one line, and a refusal (422) per rule.
const LIFECYCLE_TEMPLATES = {
  expire: { ID: "expire-temp", Status: "Enabled", Filter: { Prefix: "temp/" }, Expiration: { Days: 30 } },
  warm: { ID: "warm-after-90-days", Status: "Enabled", Filter: { Prefix: "" },
          Transitions: [{ Days: 90, StorageClass: "WARM" }] },
  empty: { ID: "new-rule", Status: "Enabled", Filter: { Prefix: "" }, Expiration: { Days: 365 } },
};

function lifecycleFilter(rule) {
  return JSON.stringify(rule.Filter || { Prefix: rule.Prefix || "" });
}

function lifecycleActions(rule) {
  return Object.keys(rule)
    .filter((k) => !["ID", "Status", "Filter", "Prefix"].includes(k))
    .map((a) => `${a} ${JSON.stringify(rule[a])}`)
    .join("; ");
}

function lifecycleRefusal(detail) {
  if (Array.isArray(detail)) {
    return detail.map((i) => (i.rule !== undefined ? `rule '${i.rule}' field ${i.field}: ${i.message}` : i.msg))
      .join("\n");
  }
  return String(detail || "request failed");
}
