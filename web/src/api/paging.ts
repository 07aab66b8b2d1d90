/**
 * Cursor paging of the inventory lists. The server hands out at most `MAX_PAGE` rows a
 * page with a `next_cursor`; pages that need the whole list (the cluster table's status bar
 * and medians, the waste page's selections and totals) read every page.
 */

/** The largest page the inventory lists accept (`limit`). */
export const MAX_PAGE = 500;

interface Page<I> {
  items: I[];
  next_cursor?: string | null;
}

/** Reads the first page and follows `next_cursor` to the end; returns one page holding every row. */
export async function allPages<I, P extends Page<I>>(fetchPage: (cursor: string | undefined) => Promise<P>): Promise<P> {
  const first = await fetchPage(undefined);
  const items: I[] = [...first.items];
  let next = first.next_cursor ?? null;
  const seen = new Set<string>();
  while (next !== null && !seen.has(next)) {
    seen.add(next);
    const page = await fetchPage(next);
    items.push(...page.items);
    next = page.next_cursor ?? null;
  }
  return { ...first, items, next_cursor: null };
}
