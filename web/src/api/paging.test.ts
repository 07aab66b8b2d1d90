import { describe, expect, it, vi } from 'vitest';
import { allPages } from './paging';

interface TestPage {
  items: number[];
  total: number;
  next_cursor: string | null;
}

describe('allPages', () => {
  it('follows next_cursor until the last page and keeps the first page’s totals', async () => {
    const pages: Record<string, TestPage> = {
      start: { items: [1, 2], total: 10, next_cursor: 'a' },
      a: { items: [3, 4], total: 10, next_cursor: 'b' },
      b: { items: [5], total: 10, next_cursor: null },
    };
    const fetchPage = vi.fn(async (cursor: string | undefined): Promise<TestPage> => {
      const page = pages[cursor ?? 'start'];
      if (page === undefined) throw new Error(`no page ${cursor}`);
      return page;
    });
    const all = await allPages<number, TestPage>(fetchPage);
    expect(all.items).toEqual([1, 2, 3, 4, 5]);
    expect(all.total).toBe(10);
    expect(all.next_cursor).toBeNull();
    expect(fetchPage).toHaveBeenCalledTimes(3);
  });

  it('stops on a repeated cursor instead of looping', async () => {
    const fetchPage = vi.fn(async (): Promise<TestPage> => ({ items: [1], total: 1, next_cursor: 'same' }));
    const all = await allPages<number, TestPage>(fetchPage);
    expect(all.items).toEqual([1, 1]);
    expect(fetchPage).toHaveBeenCalledTimes(2);
  });
});
