/** Our own Redis keys and BullMQ's live under this prefix; Django's three keys do not. */
export const KEY_PREFIX = 'meiduo-users:';
