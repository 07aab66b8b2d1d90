import type { ReactNode } from 'react';

// Decorative 16×16 line icons; they scale with `size` and inherit the text colour.
function Icon({ size = 16, children }: { size?: number; children: ReactNode }) {
  return (
    <svg className="icon" width={size} height={size} viewBox="0 0 16 16" fill="none" stroke="currentColor" strokeWidth="1.5" aria-hidden="true">
      {children}
    </svg>
  );
}

export const DashboardIcon = ({ size }: { size?: number }) => (
  <Icon size={size}>
    <rect x="2" y="2" width="5" height="6" rx="1" />
    <rect x="9" y="2" width="5" height="3" rx="1" />
    <rect x="2" y="10" width="5" height="4" rx="1" />
    <rect x="9" y="7" width="5" height="7" rx="1" />
  </Icon>
);

export const ClustersIcon = ({ size }: { size?: number }) => (
  <Icon size={size}>
    <path d="M8 1.5 13.5 4.5v7L8 14.5 2.5 11.5v-7z" />
    <path d="M8 8v6.5M8 8l5.5-3.5M8 8 2.5 4.5" />
  </Icon>
);

export const AuditIcon = ({ size }: { size?: number }) => (
  <Icon size={size}>
    <path d="M4 1.5h6l3 3v10H4z" />
    <path d="M6 7h5M6 9.5h5M6 12h3" />
  </Icon>
);

export const CloudIcon = ({ size }: { size?: number }) => (
  <Icon size={size}>
    <path d="M4.5 12.5a3 3 0 0 1-.3-6 4 4 0 0 1 7.6 1 2.5 2.5 0 0 1 0 5z" />
  </Icon>
);

export const TeamIcon = ({ size }: { size?: number }) => (
  <Icon size={size}>
    <circle cx="6" cy="5.5" r="2.5" />
    <path d="M1.5 14c.5-2.5 2.3-4 4.5-4s4 1.5 4.5 4" />
    <path d="M11 3.2a2.3 2.3 0 0 1 0 4.6M12.5 10.3c1 .6 1.7 1.9 2 3.7" />
  </Icon>
);

export const SearchIcon = ({ size }: { size?: number }) => (
  <Icon size={size}>
    <circle cx="7" cy="7" r="4.5" />
    <path d="m10.5 10.5 3.5 3.5" />
  </Icon>
);

export const MailIcon = ({ size }: { size?: number }) => (
  <Icon size={size}>
    <rect x="1.5" y="3" width="13" height="10" rx="1.5" />
    <path d="m2 4 6 5 6-5" />
  </Icon>
);

export const WasteIcon = ({ size }: { size?: number }) => (
  <Icon size={size}>
    <path d="M2.5 4h11M6 4V2.5h4V4M4 4l.7 9.5h6.6L12 4" />
    <path d="M6.8 6.5v4.5M9.2 6.5v4.5" />
  </Icon>
);

export const ModelIcon = ({ size }: { size?: number }) => (
  <Icon size={size}>
    <rect x="4" y="4" width="8" height="8" rx="1.5" />
    <path d="M6 1.5V4M10 1.5V4M6 12v2.5M10 12v2.5M1.5 6H4M1.5 10H4M12 6h2.5M12 10h2.5" />
  </Icon>
);

/** A stack of layers: node templates. */
export const TemplateIcon = ({ size }: { size?: number }) => (
  <Icon size={size}>
    <path d="M8 2 14 5 8 8 2 5z" />
    <path d="M2 8l6 3 6-3M2 11l6 3 6-3" />
  </Icon>
);
