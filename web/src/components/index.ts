export { Badge, type BadgeTone } from './Badge';
export { Button, type ButtonProps, type ButtonVariant } from './Button';
export { Card } from './Card';
export { Field, SelectField, TextField } from './Field';
export { Modal } from './Modal';
export { Skeleton, SkeletonRows } from './Skeleton';
export { EmptyState, ErrorState } from './States';
export { Table, type Column } from './Table';
export { ToastProvider, useToast } from './Toast';
