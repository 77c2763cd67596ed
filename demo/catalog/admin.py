from django.contrib import admin

from .models import Category, Note, Product


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    # Edits saved here are pushed to every websocket watching the product.
    list_display = ["name", "category", "price", "in_stock", "created_at"]
    list_editable = ["price", "in_stock"]
    list_filter = ["category", "in_stock"]
    search_fields = ["name", "description"]


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    # Pushed to the owner's windows only: the binding's get_queryset() decides.
    list_display = ["text", "owner", "done", "created_at"]
    list_editable = ["done"]
    list_filter = ["owner", "done"]
    search_fields = ["text"]
