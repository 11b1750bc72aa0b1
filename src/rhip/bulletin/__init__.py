"""The monthly bulletin (南京卫生信息化简报): sections from the domains, rendered."""
