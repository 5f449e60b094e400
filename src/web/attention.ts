// A private message while the tab is hidden: the title counts them (visible in the tab
// strip), and a system notification shows if the person has granted the permission.
// Seeing the tab again resets both.

let unseen = 0;
let baseTitle = "";

export function initAttention(): void {
  baseTitle = document.title;
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) reset();
  });
  window.addEventListener("focus", reset);
}

function reset(): void {
  unseen = 0;
  document.title = baseTitle;
}

/** Call for a private message from someone else; does nothing while the tab is visible. */
export function privateArrived(title: (n: number) => string, notification: { title: string; body: string }): void {
  if (!document.hidden) return;
  unseen++;
  document.title = title(unseen);
  if (typeof Notification !== "undefined" && Notification.permission === "granted") {
    try {
      new Notification(notification.title, { body: notification.body, tag: "bunchat-private" });
    } catch {
      // Some browsers allow notifications only from a service worker: the title still says it.
    }
  }
}
