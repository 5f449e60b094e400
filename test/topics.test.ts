// The broker's topic names: a room, cluster control, or an inbox — and never one taken for
// another. An inbox topic is the person's id itself, so every id must read back as itself.
import { describe, expect, test } from "bun:test";
import { newPersonId, subjectId } from "../src/engine/identity.ts";
import { inboxConversation, sequenceOf, topics } from "../src/engine/topics.ts";

describe("topics", () => {
  test("a person's inbox topic is their id, and reads back as that person", () => {
    for (const id of [newPersonId(), newPersonId(), subjectId("alice@example.com"), subjectId("r:lobby"), subjectId("c:all")]) {
      expect(topics.inbox(id)).toBe(id);
      expect(topics.inboxOf(topics.inbox(id))).toBe(id);
      expect(topics.roomOf(topics.inbox(id))).toBeNull();
      expect(topics.isControl(topics.inbox(id))).toBe(false);
      expect(sequenceOf(topics.inbox(id))).toBe(inboxConversation(id));
    }
  });

  test("room and control topics are never taken for an inbox", () => {
    for (const room of ["lobby", "r:x", "", "c:all", "a room"]) {
      expect(topics.inboxOf(topics.room(room))).toBeNull();
      expect(topics.roomOf(topics.room(room))).toBe(room);
      expect(sequenceOf(topics.room(room))).toBe(room);
    }
    for (const control of [topics.control, topics.answers("node-1")]) {
      expect(topics.isControl(control)).toBe(true);
      expect(topics.inboxOf(control)).toBeNull();
      expect(topics.roomOf(control)).toBeNull();
      expect(sequenceOf(control)).toBeNull();
    }
    expect(topics.inboxOf("")).toBeNull();
  });
});
