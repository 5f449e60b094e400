// The page's words in English and Simplified Chinese (the project grew out of a Chinese
// tutorial). The browser's preferred languages choose; English is the fallback.

const en = {
  loginTitle: "Join the chat",
  nameLabel: "Nickname",
  roomLabel: "Room",
  enter: "Enter",
  rooms: "Rooms",
  members: "Online",
  membersHint: "Click a name to send a private message.",
  joinRoom: "Join a room…",
  join: "Join",
  message: "Message",
  placeholder: "Write a message — Enter to send, Shift+Enter for a new line",
  send: "Send",
  online: "{n} online",
  statusOnline: "Connected",
  statusConnecting: "Connecting…",
  statusOffline: "Offline — retrying in {s}s",
  statusClosed: "Disconnected",
  privateTag: "private",
  privateTo: "to {name}",
  joinedRoom: "{names} joined",
  leftRoom: "{names} left",
  renamed: "{from} is now {name}",
  typing: "{names} is typing…",
  reconnected: "Reconnected — caught up on missed messages.",
  historyIncomplete: "Some messages from while you were away are no longer stored.",
  shuttingDown: "The server is restarting; reconnecting…",
  "refused.server_full": "The server is full. Try again in a moment.",
  "refused.name_taken": "That name is taken. Choose another.",
  "refused.bad_name": "That name is not allowed: {message}",
  "refused.bad_room": "That room name is not allowed: {message}",
  "refused.auth_required": "This server requires you to sign in (a token).",
  "refused.bad_token": "Your sign-in token was refused: {message}",
  "refused.forbidden_room": "You may not enter that room.",
  "refused.too_many_connections": "Too many connections from your address.",
  "refused.too_many_handshakes": "Too many attempts — slow down.",
  "refused.origin_not_allowed": "This page's address may not connect to the server.",
  "refused.shutting_down": "The server is restarting. Retrying…",
  "refused.banned": "{message}",
  "refused.unknown": "The server refused the connection.",
  "error.rate_limited": "You are sending too fast; that message was dropped.",
  "error.text_too_long": "That message is too long.",
  "error.empty_text": "Write something first.",
  "error.no_such_user": "{message}",
  "error.store_unavailable": "The message could not be saved and was not sent. Send it again.",
  "error.name_taken": "That name is taken.",
  "error.name_locked": "Your name comes from your sign-in and cannot change.",
  "error.muted": "{message}",
  "error.rejected": "Your message was not sent: {message}",
  "error.check_unavailable": "Your message could not be checked right now and was not sent. Send it again.",
  "error.generic": "Error: {message}",
  closedAbuse: "Disconnected for sending too fast.",
  closedTooBig: "Disconnected: that message was too large.",
  closedKicked: "A moderator removed you from the chat: {reason}",
  closedBanned: "You are banned from this chat: {reason}",
};

export type MessageKey = keyof typeof en;

const zh: Record<MessageKey, string> = {
  loginTitle: "加入聊天",
  nameLabel: "昵称",
  roomLabel: "房间",
  enter: "进入",
  rooms: "房间",
  members: "在线",
  membersHint: "点击名字发送私聊消息。",
  joinRoom: "加入房间…",
  join: "加入",
  message: "消息",
  placeholder: "输入消息 — 回车发送，Shift+回车换行",
  send: "发送",
  online: "{n} 人在线",
  statusOnline: "已连接",
  statusConnecting: "连接中…",
  statusOffline: "已断开 — {s} 秒后重试",
  statusClosed: "已断开",
  privateTag: "私聊",
  privateTo: "发给 {name}",
  joinedRoom: "{names} 加入了",
  leftRoom: "{names} 离开了",
  renamed: "{from} 改名为 {name}",
  typing: "{names} 正在输入…",
  reconnected: "已重新连接，错过的消息已补上。",
  historyIncomplete: "你离开期间的部分消息已不再保存。",
  shuttingDown: "服务器正在重启，正在重新连接…",
  "refused.server_full": "服务器已满，请稍后再试。",
  "refused.name_taken": "该昵称已被使用，请换一个。",
  "refused.bad_name": "昵称不可用：{message}",
  "refused.bad_room": "房间名不可用：{message}",
  "refused.auth_required": "此服务器需要登录（令牌）。",
  "refused.bad_token": "登录令牌被拒绝：{message}",
  "refused.forbidden_room": "你不能进入该房间。",
  "refused.too_many_connections": "来自你地址的连接过多。",
  "refused.too_many_handshakes": "尝试过于频繁，请放慢速度。",
  "refused.origin_not_allowed": "此页面地址不允许连接服务器。",
  "refused.shutting_down": "服务器正在重启，正在重试…",
  "refused.banned": "你已被禁止进入此聊天。（{message}）",
  "refused.unknown": "服务器拒绝了连接。",
  "error.rate_limited": "发送太快，这条消息被丢弃了。",
  "error.text_too_long": "消息太长。",
  "error.empty_text": "请先输入内容。",
  "error.no_such_user": "{message}",
  "error.store_unavailable": "消息未能保存，因此没有发出。请重新发送。",
  "error.name_taken": "该昵称已被使用。",
  "error.name_locked": "你的昵称来自登录信息，无法更改。",
  "error.muted": "你已被禁言。（{message}）",
  "error.rejected": "消息未发送：{message}",
  "error.check_unavailable": "消息暂时无法审核，未发送。请重新发送。",
  "error.generic": "错误：{message}",
  closedAbuse: "由于发送过快已被断开。",
  closedTooBig: "已断开：消息过大。",
  closedKicked: "管理员已将你移出聊天：{reason}",
  closedBanned: "你已被禁止进入此聊天：{reason}",
};

const dictionaries: Record<string, Record<MessageKey, string>> = { en, zh };

/** Whether the page has words for this key (e.g. "refused.server_full", "error.rate_limited"). */
export function hasMessage(key: string): boolean {
  return key in en;
}

export function pickLanguage(preferred: readonly string[]): "en" | "zh" {
  for (const tag of preferred) {
    const lower = tag.toLowerCase();
    if (lower.startsWith("zh")) return "zh";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

export function translator(lang: "en" | "zh") {
  const dict = dictionaries[lang] ?? en;
  return (key: MessageKey | string, vars: Record<string, string | number> = {}): string => {
    const template = (dict as Record<string, string>)[key] ?? (en as Record<string, string>)[key] ?? key;
    return template.replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? ""));
  };
}
