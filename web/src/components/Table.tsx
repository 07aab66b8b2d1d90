import type { KeyboardEvent, ReactNode } from 'react';

export type SortDirection = 'asc' | 'desc';

export interface SortState {
  key: string;
  direction: SortDirection;
}

export interface Column<T> {
  key: string;
  header: ReactNode;
  render: (row: T) => ReactNode;
  width?: string;
  /** Shows a sort button in the header; the table calls `onSortChange` with this column's key. */
  sortable?: boolean;
  align?: 'left' | 'right';
}

interface TableProps<T> {
  /** Accessible name for the table. */
  caption: string;
  columns: Column<T>[];
  rows: T[];
  rowKey: (row: T) => string;
  /** Makes rows clickable and keyboard-activatable (Enter / Space). */
  onRowClick?: (row: T) => void;
  rowLabel?: (row: T) => string;
  /** Current sort; the rows are expected to arrive already sorted. */
  sort?: SortState;
  onSortChange?: (sort: SortState) => void;
}

const ARIA_SORT = { asc: 'ascending', desc: 'descending' } as const;

export function Table<T>({ caption, columns, rows, rowKey, onRowClick, rowLabel, sort, onSortChange }: TableProps<T>) {
  const onKeyDown = (event: KeyboardEvent<HTMLTableRowElement>, row: T) => {
    if (event.target !== event.currentTarget) return;
    if (onRowClick && (event.key === 'Enter' || event.key === ' ')) {
      event.preventDefault();
      onRowClick(row);
    }
  };
  const header = (column: Column<T>) => {
    if (!column.sortable || !onSortChange) return column.header;
    const active = sort?.key === column.key;
    // A new column starts ascending; the active one flips.
    const next: SortDirection = active && sort.direction === 'asc' ? 'desc' : 'asc';
    return (
      <button type="button" className="sort-btn" onClick={() => onSortChange({ key: column.key, direction: next })}>
        {column.header}
        <span className={active ? 'sort-btn__arrow sort-btn__arrow--active' : 'sort-btn__arrow'} aria-hidden="true">
          {active && sort.direction === 'desc' ? '↓' : '↑'}
        </span>
      </button>
    );
  };
  return (
    <div className="table-wrap">
      <table className={onRowClick ? 'table table--interactive' : 'table'}>
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            {columns.map((column) => (
              <th
                key={column.key}
                scope="col"
                className={column.align === 'right' ? 'table__num' : undefined}
                style={column.width ? { width: column.width } : undefined}
                aria-sort={column.sortable && onSortChange ? (sort?.key === column.key ? ARIA_SORT[sort.direction] : 'none') : undefined}
              >
                {header(column)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr
              key={rowKey(row)}
              onClick={onRowClick ? () => onRowClick(row) : undefined}
              onKeyDown={onRowClick ? (event) => onKeyDown(event, row) : undefined}
              tabIndex={onRowClick ? 0 : undefined}
              aria-label={rowLabel?.(row)}
            >
              {columns.map((column) => (
                <td key={column.key} className={column.align === 'right' ? 'table__num' : undefined}>
                  {column.render(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
